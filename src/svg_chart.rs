//! A small SVG line chart with two y axes (one series each), for curves such
//! as sparsity vs accuracy vs HE ops. Hand-written: a plotting crate would
//! bring far more than these hundred lines.

use std::fmt::Write;

/// One plotted series.
pub struct Series<'a> {
    /// Axis label, e.g. `accuracy`.
    pub label: &'a str,
    /// One value per x.
    pub values: &'a [f64],
    /// Line colour.
    pub colour: &'a str,
}

const W: f64 = 640.0;
const H: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 80.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// `[lo, hi]` padded to something readable; a flat series gets a unit range.
fn range(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// About five round tick values (multiples of 1, 2 or 5 × 10^k) inside `[lo, hi]`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 6.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Format an axis tick: large values in scientific notation, others trimmed.
fn tick(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{v:.1e}")
    } else {
        // Trim float noise such as 0.30000000000000004.
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The chart as an SVG document.
pub fn two_axis_chart(
    title: &str,
    x_label: &str,
    x: &[f64],
    left: &Series,
    right: &Series,
) -> String {
    let (x0, x1) = range(x);
    let px = |v: f64| LEFT + (v - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#888"/>
"##,
        W / 2.0,
        escape(title),
        (LEFT + W - RIGHT) / 2.0,
        H - 10.0,
        escape(x_label),
        W - LEFT - RIGHT,
        H - TOP - BOTTOM,
    );
    for v in ticks(x0, x1) {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(v),
            H - BOTTOM + 16.0,
            tick(v)
        );
    }
    for (series, on_left) in [(left, true), (right, false)] {
        let (y0, y1) = range(series.values);
        let py = |v: f64| H - BOTTOM - (v - y0) / (y1 - y0) * (H - TOP - BOTTOM);
        let (axis_x, anchor, label_x) = if on_left {
            (LEFT - 6.0, "end", 16.0)
        } else {
            (W - RIGHT + 6.0, "start", W - 16.0)
        };
        for v in ticks(y0, y1) {
            let _ = writeln!(
                svg,
                r#"<text x="{axis_x}" y="{:.1}" text-anchor="{anchor}" fill="{}">{}</text>"#,
                py(v) + 4.0,
                series.colour,
                tick(v)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{label_x}" y="{:.1}" text-anchor="middle" fill="{}" transform="rotate(-90 {label_x} {:.1})">{}</text>"#,
            H / 2.0,
            series.colour,
            H / 2.0,
            escape(series.label)
        );
        let points: Vec<String> = x
            .iter()
            .zip(series.values)
            .map(|(&a, &b)| format!("{:.1},{:.1}", px(a), py(b)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            series.colour,
            points.join(" ")
        );
        for p in &points {
            let (cx, cy) = p.split_once(',').expect("formatted as x,y");
            let _ = writeln!(
                svg,
                r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{}"/>"#,
                series.colour
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        assert_eq!(
            ticks(-0.04, 1.0),
            [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(
            ticks(10_000.0, 850_000.0),
            [200_000.0, 400_000.0, 600_000.0, 800_000.0]
        );
        assert_eq!(tick(0.6000000000000001), "0.6");
        assert_eq!(tick(400_000.0), "4.0e5");
    }

    #[test]
    fn the_chart_escapes_text_and_draws_both_series() {
        let svg = two_axis_chart(
            "a < b",
            "x",
            &[0.0, 0.5],
            &Series {
                label: "acc",
                values: &[0.9, 0.5],
                colour: "blue",
            },
            &Series {
                label: "ops",
                values: &[10.0, 5.0],
                colour: "red",
            },
        );
        assert!(svg.contains("a &lt; b"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
    }
}
