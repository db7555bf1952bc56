//! The pass manager: named passes, pipelines built from names, reports.

use std::fmt;

use hepack_ir::Graph;
use serde::Serialize;

use crate::error::PassError;
use crate::poly::FitReport;

/// A transformation of a graph. Passes keep the graph valid; the manager checks
/// this with [`Graph::verify`] after each one.
pub trait Pass {
    /// The name used on the command line.
    fn name(&self) -> &'static str;
    /// Rewrite the graph and say what changed.
    fn run(&mut self, graph: &mut Graph) -> Result<PassReport, PassError>;
}

/// What one pass did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PassReport {
    /// The pass's name (filled in by the manager).
    pub pass: &'static str,
    /// One line per change, naming the layer it touched.
    pub changes: Vec<String>,
    /// Per-layer fit quality, for passes that approximate activations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fits: Vec<FitReport>,
}

impl PassReport {
    /// Record a change.
    pub fn change(&mut self, what: impl Into<String>) {
        self.changes.push(what.into());
    }
}

impl fmt::Display for PassReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.changes.len();
        writeln!(
            f,
            "{}: {n} change{}",
            self.pass,
            if n == 1 { "" } else { "s" }
        )?;
        // A fit line says all its change line does: print each activation once.
        for c in self.changes.iter().filter(|_| self.fits.is_empty()) {
            writeln!(f, "  {c}")?;
        }
        for fit in &self.fits {
            writeln!(f, "  {fit}")?;
        }
        Ok(())
    }
}

/// An ordered list of passes.
#[derive(Default)]
pub struct Pipeline {
    passes: Vec<Box<dyn Pass>>,
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Self {
        Pipeline::default()
    }

    /// Append a pass.
    pub fn push(&mut self, pass: impl Pass + 'static) -> &mut Self {
        self.passes.push(Box::new(pass));
        self
    }

    /// The pass names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    /// Run every pass in order; `after` sees each report and the graph it left.
    pub fn run(
        &mut self,
        graph: &mut Graph,
        mut after: impl FnMut(&PassReport, &Graph),
    ) -> Result<Vec<PassReport>, PassError> {
        let mut reports = Vec::with_capacity(self.passes.len());
        for pass in &mut self.passes {
            let name = pass.name();
            let _span = tracing::info_span!("pass", name).entered();
            let mut report = pass.run(graph)?;
            report.pass = name;
            graph.compact();
            graph
                .verify()
                .map_err(|source| PassError::Broke { pass: name, source })?;
            tracing::info!(changes = report.changes.len(), "done");
            after(&report, graph);
            reports.push(report);
        }
        Ok(reports)
    }
}
