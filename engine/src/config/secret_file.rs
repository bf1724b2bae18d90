//! Files that hold secrets (a relay password file, a tracking key file, a DKIM private key):
//! on Unix, one that group or others may access is worth a warning, since anyone who reads it
//! can log in to the relay, forge tracking tokens or sign mail as the domain. Volley warns and
//! goes on; `volley check` shows the same finding as a row.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// A secret file that group or others have some access to (`mode & 0o077 != 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoosePermissions {
    /// The file, as the campaign file names it (resolved against its folder).
    pub path: PathBuf,
    /// Its permission bits (`0o644`…), without the file type.
    pub mode: u32,
}

impl fmt::Display for LoosePermissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        write!(
            f,
            "{path} holds a secret but group or others may read it (mode {:04o}): run `chmod 600 {path}`",
            self.mode
        )
    }
}

/// Whether the file at `path` is open to group or others (any of the bits `0o077`). `None`
/// when it is private, cannot be inspected (a missing file is reported where it is read), or
/// on systems without Unix permissions.
pub fn loose_permissions(path: &Path) -> Option<LoosePermissions> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
        (mode & 0o077 != 0).then(|| LoosePermissions {
            path: path.to_path_buf(),
            mode,
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Logs a warning when the secret file at `path` is open to group or others; `secret` says
/// what it holds (`relay.password_file`, `dkim key s1._domainkey.acme.example`). Each file is
/// warned about once per process, however often it is read (once per variant, again by a
/// handed-over campaign…).
pub(crate) fn warn_if_loose(secret: &str, path: &Path) {
    let Some(loose) = loose_permissions(path) else {
        return;
    };
    static WARNED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let mut warned = WARNED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if warned.insert(loose.path.clone()) {
        tracing::warn!(secret, "{loose}");
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn file_with_mode(dir: &Path, mode: u32) -> PathBuf {
        let path = dir.join(format!("secret-{mode:o}"));
        std::fs::write(&path, "secret").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn only_files_open_to_group_or_others_are_loose() {
        let dir = tempfile::tempdir().unwrap();
        for (mode, loose) in [
            (0o600, false),
            (0o400, false),
            (0o700, false),
            (0o644, true),
            (0o640, true),
            (0o604, true),
            (0o620, true),
            (0o666, true),
        ] {
            let path = file_with_mode(dir.path(), mode);
            let found = loose_permissions(&path);
            assert_eq!(found.is_some(), loose, "mode {mode:o}: {found:?}");
            if let Some(found) = found {
                assert_eq!(found.mode, mode);
                assert_eq!(found.path, path);
            }
        }
    }

    #[test]
    fn the_warning_names_the_file_its_mode_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with_mode(dir.path(), 0o644);
        let text = loose_permissions(&path).unwrap().to_string();
        let shown = path.display().to_string();
        assert!(text.starts_with(&shown), "{text}");
        assert!(text.contains("(mode 0644)"), "{text}");
        assert!(
            text.ends_with(&format!("run `chmod 600 {shown}`")),
            "{text}"
        );
    }

    #[test]
    fn a_missing_file_is_not_reported_here() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(loose_permissions(&dir.path().join("absent")), None);
    }
}
