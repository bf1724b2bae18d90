//! A campaign document: what a campaign handed to the cluster is in the database. It holds the
//! campaign file's text, rewritten so that the files it names are the document's own
//! (templates, a rules file, CA certificates, the list: the whole CSV for a scheduled campaign,
//! only its header line for a one-off one, whose list is loaded already), and never a secret:
//! a secret key keeps its file path (made absolute) or its environment variable's name, and
//! each node reads it on its own machine. `[store]` is left out: each node has its own way to
//! the database.

use super::error::{ClusterError, DocumentProblem};
use crate::config::CampaignSettings;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// The document format this build writes and reads.
pub const DOCUMENT_FORMAT: u32 = 1;

/// A published campaign, as stored (JSON) in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignDocument {
    /// [`DOCUMENT_FORMAT`] when written.
    pub format: u32,
    /// The campaign id (`[campaign] id`: a scheduled campaign's, not an edition's).
    pub id: String,
    /// The campaign file's text, rewritten: file keys name the document's files, secret keys
    /// absolute paths or environment variables, no `[store]`.
    pub campaign_toml: String,
    /// The names of its files (stored beside it), in order.
    pub files: Vec<String>,
    /// Whether the campaign is scheduled (`[schedule]`): nodes fire its editions.
    pub scheduled: bool,
    /// The campaign file it was made from, on the machine that published it (for messages).
    pub published_from: PathBuf,
    /// Where each node finds the campaign's secrets.
    pub secrets: Vec<SecretRef>,
    /// SHA-256 (hex) of the id, the text and the files: equal documents have equal digests.
    pub digest: String,
}

/// Where a node finds one secret of the campaign: a file on its own disk or an environment
/// variable of its own process. Never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    /// The TOML key (`dkim[0].key_file`, `relay.password_env`, `tracking.key_file`).
    pub key: String,
    /// The file (absolute), for a `*_file` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The variable's name, for a `*_env` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

/// One file of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentFile {
    /// Its name in the document (no folders: `01-body.html`).
    pub name: String,
    /// Its content.
    pub body: Vec<u8>,
}

/// What a key of the campaign file names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A file whose content travels (template, rules, certificate).
    Content,
    /// The recipient list.
    List,
    /// A secret's file: its absolute path travels.
    SecretFile,
    /// A secret's environment variable: its name travels (unchanged).
    SecretEnv,
}

/// The keys of a campaign file that name files or secrets: section, whether it is an array
/// of tables, key, kind.
const PLACES: &[(&str, bool, &str, Kind)] = &[
    ("campaign", false, "text", Kind::Content),
    ("campaign", false, "html", Kind::Content),
    ("campaign", false, "recipients", Kind::List),
    ("variant", true, "text", Kind::Content),
    ("variant", true, "html", Kind::Content),
    ("bounces", false, "rules_file", Kind::Content),
    ("relay", false, "ca_file", Kind::Content),
    ("mx", false, "ca_file", Kind::Content),
    ("relay", false, "password_file", Kind::SecretFile),
    ("relay", false, "password_env", Kind::SecretEnv),
    ("tracking", false, "key_file", Kind::SecretFile),
    ("tracking", false, "key_env", Kind::SecretEnv),
    ("dkim", true, "key_file", Kind::SecretFile),
    ("dkim", true, "key_env", Kind::SecretEnv),
];

impl CampaignDocument {
    /// Makes the document of the campaign `settings` were loaded from, whose file holds
    /// `text`: reads the files it names (relative paths from the campaign file's folder) and
    /// returns the document with its files.
    pub fn build(
        settings: &CampaignSettings,
        text: &str,
    ) -> Result<(CampaignDocument, Vec<DocumentFile>), ClusterError> {
        let campaign_file = std::path::absolute(&settings.file).unwrap_or(settings.file.clone());
        let folder = campaign_file.parent().unwrap_or(Path::new("/")).to_owned();
        let mut table: Table = text.parse().map_err(|source| ClusterError::Toml {
            campaign_file: campaign_file.clone(),
            source: Box::new(source),
        })?;
        table.remove("store");
        let scheduled = settings.schedule.is_some();
        let mut builder = Builder {
            campaign_file: &campaign_file,
            folder: &folder,
            scheduled,
            files: Vec::new(),
            secrets: Vec::new(),
        };
        for &(section, array, key, kind) in PLACES {
            for index in indexes(&table, section, array) {
                let name = match index {
                    Some(i) => format!("{section}[{i}].{key}"),
                    None => format!("{section}.{key}"),
                };
                if let Some(value) = string_at(&mut table, section, index, key) {
                    builder.rewrite(&name, kind, value)?;
                }
            }
        }
        let id = table
            .get("campaign")
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
            .unwrap_or(&settings.id)
            .to_owned();
        let campaign_toml = table.to_string();
        let Builder { files, secrets, .. } = builder;
        let digest = digest(&id, &campaign_toml, &files);
        let document = CampaignDocument {
            format: DOCUMENT_FORMAT,
            id,
            campaign_toml,
            files: files.iter().map(|f| f.name.clone()).collect(),
            scheduled,
            published_from: campaign_file,
            secrets,
            digest,
        };
        Ok((document, files))
    }

    /// The document as stored (JSON).
    pub fn to_json(&self) -> String {
        // invariant: every field serialises (strings, paths from UTF-8 text, numbers).
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a stored document (`campaign` names it in errors), refusing a newer format.
    pub fn from_json(campaign: &str, json: &str) -> Result<CampaignDocument, ClusterError> {
        let bad = |problem| ClusterError::BadDocument {
            campaign: campaign.to_owned(),
            problem,
        };
        let document: CampaignDocument =
            serde_json::from_str(json).map_err(|e| bad(DocumentProblem::Json(e.to_string())))?;
        if document.format != DOCUMENT_FORMAT {
            return Err(bad(DocumentProblem::Format {
                found: document.format,
                known: DOCUMENT_FORMAT,
            }));
        }
        Ok(document)
    }

    /// Sets the list's file among `files` to `header` (its header line: a list uploaded over
    /// the API after the campaign was created) and the digest with it; false when the
    /// document names no list file.
    pub fn set_list_header(&mut self, files: &mut [DocumentFile], header: Vec<u8>) -> bool {
        let name = self.campaign_toml.parse::<Table>().ok().and_then(|t| {
            t.get("campaign")?
                .get("recipients")?
                .as_str()
                .map(str::to_owned)
        });
        let Some(file) = name.and_then(|n| files.iter_mut().find(|f| f.name == n)) else {
            return false;
        };
        file.body = header;
        self.digest = digest(&self.id, &self.campaign_toml, files);
        true
    }

    /// Whether `files` are this document's files, as published.
    pub fn matches(&self, files: &[DocumentFile]) -> bool {
        digest(&self.id, &self.campaign_toml, files) == self.digest
    }
}

/// What a document is made of, gathered key by key.
struct Builder<'a> {
    campaign_file: &'a Path,
    folder: &'a Path,
    scheduled: bool,
    files: Vec<DocumentFile>,
    secrets: Vec<SecretRef>,
}

impl Builder<'_> {
    /// Rewrites the value of key `name` (a string) as its kind asks.
    fn rewrite(&mut self, name: &str, kind: Kind, value: &mut Value) -> Result<(), ClusterError> {
        let Value::String(text) = value else {
            return Ok(());
        };
        let path = self.folder.join(text.as_str());
        match kind {
            Kind::SecretEnv => self.secrets.push(SecretRef {
                key: name.to_owned(),
                file: None,
                env: Some(text.clone()),
            }),
            Kind::SecretFile => {
                *text = path.display().to_string();
                self.secrets.push(SecretRef {
                    key: name.to_owned(),
                    file: Some(path),
                    env: None,
                });
            }
            Kind::Content | Kind::List => {
                let mut body = std::fs::read(&path).map_err(|source| ClusterError::Read {
                    campaign_file: self.campaign_file.to_owned(),
                    key: name.to_owned(),
                    path: path.clone(),
                    source,
                })?;
                if kind == Kind::List && !self.scheduled {
                    // The list is in the database; the header names the merge fields.
                    let end = body
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(body.len(), |i| i + 1);
                    body.truncate(end);
                }
                let file_name = format!("{:02}-{}", self.files.len(), safe_name(&path));
                *text = file_name.clone();
                self.files.push(DocumentFile {
                    name: file_name,
                    body,
                });
            }
        }
        Ok(())
    }
}

/// The indexes of `section` to visit: `[None]` for a table, each entry of an array.
/// A section that may be either (`[relay]` or `[[relay]]`) is listed as a table and read
/// as whichever it is.
fn indexes(table: &Table, section: &str, array: bool) -> Vec<Option<usize>> {
    match table.get(section).and_then(Value::as_array) {
        Some(entries) => (0..entries.len()).map(Some).collect(),
        None if array => Vec::new(),
        None => vec![None],
    }
}

/// The value of `key` in `section` (entry `index` of an array of tables), when there.
fn string_at<'a>(
    table: &'a mut Table,
    section: &str,
    index: Option<usize>,
    key: &str,
) -> Option<&'a mut Value> {
    let section = table.get_mut(section)?;
    let entry = match index {
        Some(i) => section.as_array_mut()?.get_mut(i)?,
        None => section,
    };
    entry.as_table_mut()?.get_mut(key)
}

/// A file's name reduced to letters, digits, `.`, `-` and `_` (its extension kept).
fn safe_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() {
        "file".to_owned()
    } else {
        safe.to_owned()
    }
}

/// SHA-256 (hex) of the id, the text and every file, each length-prefixed.
fn digest(id: &str, text: &str, files: &[DocumentFile]) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut part = |bytes: &[u8]| {
        context.update(&(bytes.len() as u64).to_be_bytes());
        context.update(bytes);
    };
    part(id.as_bytes());
    part(text.as_bytes());
    for file in files {
        part(file.name.as_bytes());
        part(&file.body);
    }
    data_encoding::HEXLOWER.encode(context.finish().as_ref())
}
