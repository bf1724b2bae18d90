//! A node's side of a campaign document: written out as a campaign file and its files into
//! `<local_dir>/cluster/<id>/`, where the normal loader reads it, after checking that the
//! secrets it names are at hand on this node.

use super::document::{CampaignDocument, DocumentFile};
use super::error::{ClusterError, DocumentProblem};
use std::path::{Path, PathBuf};

/// The folder of the local directory that materialised documents go into.
pub const MATERIALISED_DIR: &str = "cluster";

/// The file, beside a materialised campaign file, holding its document's digest.
const DIGEST_FILE: &str = ".document-digest";

/// The campaign file's name in a materialised folder.
const CAMPAIGN_FILE: &str = "campaign.toml";

/// Writes `document` with its `files` into `<local_dir>/cluster/<id>/` (unless that folder
/// holds this very document already) and returns the campaign file's path. The folder is
/// replaced as a whole, so a loader never sees half of one document and half of another.
pub fn materialise(
    document: &CampaignDocument,
    files: &[DocumentFile],
    local_dir: &Path,
) -> Result<PathBuf, ClusterError> {
    let bad = |problem| ClusterError::BadDocument {
        campaign: document.id.clone(),
        problem,
    };
    if !is_safe_name(&document.id) {
        return Err(bad(DocumentProblem::Id(document.id.clone())));
    }
    let root = local_dir.join(MATERIALISED_DIR);
    let folder = root.join(&document.id);
    let campaign_file = folder.join(CAMPAIGN_FILE);
    let current = std::fs::read_to_string(folder.join(DIGEST_FILE)).unwrap_or_default();
    if current.trim() == document.digest && campaign_file.exists() {
        return Ok(campaign_file);
    }
    for name in &document.files {
        if !is_safe_name(name) || name == CAMPAIGN_FILE {
            return Err(bad(DocumentProblem::FileName(name.clone())));
        }
        if !files.iter().any(|f| f.name == *name) {
            return Err(bad(DocumentProblem::MissingFile(name.clone())));
        }
    }
    if !document.matches(files) {
        return Err(bad(DocumentProblem::Digest));
    }
    let staging = root.join(format!(".{}.{}", document.id, std::process::id()));
    write_folder(&staging, document, files)?;
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| ClusterError::Write { path, source }
    };
    if folder.exists() {
        std::fs::remove_dir_all(&folder).map_err(write_error(&folder))?;
    }
    std::fs::rename(&staging, &folder).map_err(write_error(&folder))?;
    Ok(campaign_file)
}

/// Writes the document's folder at `folder` (made anew, private to the user).
fn write_folder(
    folder: &Path,
    document: &CampaignDocument,
    files: &[DocumentFile],
) -> Result<(), ClusterError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let write = |path: PathBuf, body: &[u8]| {
        std::fs::write(&path, body).map_err(|source| ClusterError::Write { path, source })
    };
    if folder.exists() {
        std::fs::remove_dir_all(folder).map_err(|source| ClusterError::Write {
            path: folder.to_owned(),
            source,
        })?;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
        .map_err(|source| ClusterError::Write {
            path: folder.to_owned(),
            source,
        })?;
    for file in files.iter().filter(|f| document.files.contains(&f.name)) {
        write(folder.join(&file.name), &file.body)?;
    }
    write(
        folder.join(CAMPAIGN_FILE),
        document.campaign_toml.as_bytes(),
    )?;
    write(folder.join(DIGEST_FILE), document.digest.as_bytes())
}

/// Whether the campaign file at `path` is a materialised document (not to be published
/// again: its own document is in the database already).
pub fn is_materialised(path: &Path) -> bool {
    path.parent()
        .is_some_and(|folder| folder.join(DIGEST_FILE).is_file())
}

/// Checks that every secret `document` names can be read on this node (`node`, for the
/// message): each file opens, each environment variable is set. The first that cannot is
/// the error, naming the key and the file or variable (never a secret's content).
pub fn check_secrets(document: &CampaignDocument, node: &str) -> Result<(), ClusterError> {
    for secret in &document.secrets {
        let problem = match (&secret.file, &secret.env) {
            (Some(file), _) => std::fs::File::open(file).err().map(|e| {
                let reason = match e.kind() {
                    std::io::ErrorKind::NotFound => "not found".to_owned(),
                    std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
                    _ => e.to_string(),
                };
                (file.display().to_string(), reason)
            }),
            (None, Some(name)) => std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .is_none()
                .then(|| (name.clone(), "not set".to_owned())),
            (None, None) => None,
        };
        if let Some((place, reason)) = problem {
            return Err(ClusterError::MissingSecret {
                node: node.to_owned(),
                campaign: document.id.clone(),
                key: secret.key.clone(),
                place,
                reason,
            });
        }
    }
    Ok(())
}

/// A name that stays inside its folder: letters, digits, `.`, `-`, `_`, not starting with a
/// dot, at most 128 characters.
fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}
