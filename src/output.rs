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
/// only (0600, for secret keys).
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
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
