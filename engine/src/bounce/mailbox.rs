//! Bounce intake, step one: reading raw messages from wherever bounces were collected — a
//! single message file, an mbox, a Maildir or a plain directory of message files. Each
//! message is then parsed by [`super::dsn::parse_message`].

use std::fs;
use std::path::{Path, PathBuf};

use super::error::BounceError;

/// One raw message and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedMessage {
    /// Where the message came from: the file path, `path#N` (1-based) for the Nth message
    /// of an mbox, or the message's file path inside a Maildir.
    pub source: String,
    /// The raw message.
    pub bytes: Vec<u8>,
}

/// Reads every message at `path`:
/// - a Maildir (a directory with `cur/` and/or `new/`): the files of `new/` then `cur/`;
/// - any other directory: each regular, non-hidden file is one message (not recursive);
/// - a file whose first line starts with `From `: an mbox, split on `From ` lines, with
///   `>From ` lines un-escaped (mboxrd);
/// - any other file: one message.
///
/// Files are taken in name order, so the result is deterministic.
pub fn read_messages(path: &Path) -> Result<Vec<SourcedMessage>, BounceError> {
    let meta = fs::metadata(path).map_err(|source| BounceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        let (cur, new) = (path.join("cur"), path.join("new"));
        if cur.is_dir() || new.is_dir() {
            let mut messages = read_plain_dir(&new)?;
            messages.extend(read_plain_dir(&cur)?);
            return Ok(messages);
        }
        return read_plain_dir(path);
    }
    if !meta.is_file() {
        return Err(BounceError::Unsupported {
            path: path.to_path_buf(),
        });
    }
    let bytes = fs::read(path).map_err(|source| BounceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let source = path.display().to_string();
    if bytes.starts_with(b"From ") {
        return Ok(split_mbox(&bytes)
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| SourcedMessage {
                source: format!("{source}#{}", i + 1),
                bytes,
            })
            .collect());
    }
    Ok(vec![SourcedMessage { source, bytes }])
}

/// Each regular, non-hidden file of `dir` as one message, in name order. A missing directory
/// (a Maildir without `new/`) has none.
fn read_plain_dir(dir: &Path) -> Result<Vec<SourcedMessage>, BounceError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let list_error = |source| BounceError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in fs::read_dir(dir).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        let is_file = entry.file_type().map_err(list_error)?.is_file();
        if is_file && !hidden {
            files.push(entry.path());
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let bytes = fs::read(&file).map_err(|source| BounceError::Read {
                path: file.clone(),
                source,
            })?;
            Ok(SourcedMessage {
                source: file.display().to_string(),
                bytes,
            })
        })
        .collect()
}

/// Splits an mbox into its messages: each starts after a line beginning with `From `;
/// `>From ` (any number of `>`) loses one `>`.
fn split_mbox(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            messages.extend(current.take().map(trim_separator));
            current = Some(Vec::new());
            continue;
        }
        let Some(message) = current.as_mut() else {
            continue;
        };
        let quotes = line.iter().take_while(|&&b| b == b'>').count();
        if quotes > 0 && line[quotes..].starts_with(b"From ") {
            message.extend_from_slice(&line[1..]);
        } else {
            message.extend_from_slice(line);
        }
    }
    messages.extend(current.map(trim_separator));
    messages
}

/// Drops the one blank line that separates a message from the next `From ` line.
fn trim_separator(mut message: Vec<u8>) -> Vec<u8> {
    if message.ends_with(b"\r\n\r\n") {
        message.truncate(message.len() - 2);
    } else if message.ends_with(b"\n\n") {
        message.truncate(message.len() - 1);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/dsn")
    }

    #[test]
    fn mbox_is_split_and_unescaped() {
        let mbox = b"From a@b Mon Jun  3 10:00:00 2024\nSubject: one\n\n>From here\n>>From there\n\nFrom c@d Mon Jun  3 10:00:01 2024\nSubject: two\n\nbody\n";
        let messages = split_mbox(mbox);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0], b"Subject: one\n\nFrom here\n>From there\n");
        assert_eq!(messages[1], b"Subject: two\n\nbody\n");
    }

    #[test]
    fn fixture_mbox_holds_three_sourced_messages() {
        let path = fixtures().join("mixed.mbox");
        let messages = read_messages(&path).unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[2].source, format!("{}#3", path.display()));
        assert!(messages.iter().all(|m| !m.bytes.starts_with(b"From ")));
    }

    #[test]
    fn fixture_maildir_reads_new_then_cur() {
        let messages = read_messages(&fixtures().join("maildir")).unwrap();
        assert_eq!(messages.len(), 2);
        assert!(messages[0].source.contains("/new/"));
        assert!(messages[1].source.contains("/cur/"));
    }

    #[test]
    fn plain_directory_and_single_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b.eml"), b"Subject: b\n\nb\n").unwrap();
        fs::write(dir.path().join("a.eml"), b"Subject: a\n\na\n").unwrap();
        fs::write(dir.path().join(".hidden"), b"x").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let messages = read_messages(dir.path()).unwrap();
        let sources: Vec<_> = messages
            .iter()
            .map(|m| m.source.rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(sources, ["a.eml", "b.eml"]);
        let single = read_messages(&dir.path().join("a.eml")).unwrap();
        assert_eq!(single[0].bytes, b"Subject: a\n\na\n");
    }

    #[test]
    fn missing_path_is_a_read_error_naming_it() {
        let err = read_messages(Path::new("/nonexistent/bounces.mbox")).unwrap_err();
        assert!(matches!(err, BounceError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/bounces.mbox"));
    }
}
