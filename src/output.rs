//! Writing output files atomically, so a failed command leaves nothing half-written.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

/// Write `bytes` to a temporary file beside `path`, then rename it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, false, |w| Ok(w.write_all(bytes)?))
}

/// Stream a file through a temporary file beside `path`, renamed into place
/// only when `write` succeeded; `private` leaves it readable by its owner
/// only (0600, for secret keys and decrypted data), else it gets the mode a
/// new file would (0666 less the umask).
pub fn write_atomic_with(
    path: &Path,
    private: bool,
    write: impl FnOnce(&mut BufWriter<&std::fs::File>) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tempfile's error names the temporary file; the user gave `path`.
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        let cause = e.raw_os_error().map_or_else(
            || std::io::Error::from(e.kind()),
            std::io::Error::from_raw_os_error,
        );
        anyhow::anyhow!("cannot write {}: {cause}", path.display())
    })?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        write(&mut w).with_context(|| format!("cannot write {}", path.display()))?;
        w.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    // Temporary files are created 0600; only public outputs are opened up.
    #[cfg(unix)]
    if !private {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o666 & !umask()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The process's umask (read by setting it, then restoring it).
#[cfg(unix)]
fn umask() -> u32 {
    // SAFETY: umask only swaps the process's file-creation mask.
    let mask = unsafe { libc::umask(0o022) };
    // SAFETY: as above; this restores the mask read.
    unsafe { libc::umask(mask) };
    // `mode_t` is u32 on Linux, u16 on macOS.
    #[allow(clippy::useless_conversion)]
    u32::from(mask)
}

/// Refuse to write `output` when it is the same file as one of `inputs`
/// (`decrypt -o keys/secret.key` would replace the key; `run -o x.ct` its
/// own input). Paths that do not exist yet cannot be one of them.
pub fn refuse_overwriting(output: &Path, inputs: &[&Path]) -> Result<()> {
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(());
    };
    for input in inputs {
        if let Ok(meta) = std::fs::metadata(input) {
            if same_file(&out, &meta) {
                anyhow::bail!(
                    "the output {} is the input {}; write the output elsewhere",
                    output.display(),
                    input.display()
                );
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}
