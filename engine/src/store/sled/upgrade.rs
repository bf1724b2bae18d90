//! `volley store upgrade DIR`: rewrites a format-1 store (one record, queue, de-duplication
//! and number key per recipient) into this binary's format (packed rows, state words, see
//! `keys` and `format`).
//!
//! The new store is written beside the old one (`DIR.upgrading`), made durable, then the old
//! folder becomes `DIR.format1` and the new one `DIR`. A crash at any point leaves either
//! the untouched old store (a leftover `DIR.upgrading` is removed and redone) or both
//! folders renamed but one, which the next run finishes. A store of a format this binary
//! reads as it is (2 or 3, see `format`) is left alone.

use super::events::AttemptLog;
use super::format;
use super::keys;
use super::packed::COLLECTED;
use super::writer::PackedWriter;
use super::SledStore;
use crate::model::{RecipientState, ReplyRecord};
use crate::store::{CampaignMeta, RecipientKey, RecipientRecord, StoreError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Format-1 tags read only here.
const RECORD: u8 = b'r';
const QUEUE: u8 = b'q';
const DEDUPE: u8 = b'd';
const BY_NUMBER: u8 = b'n';
const GC_PACKED: u8 = b'g';

/// What `volley store upgrade` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgraded {
    /// The store was already in this binary's format: nothing was done.
    pub already: bool,
    /// Campaigns rewritten.
    pub campaigns: u64,
    /// Recipients rewritten.
    pub recipients: u64,
    /// Where the old store was kept (`DIR.format1`), when it was rewritten.
    pub old: Option<PathBuf>,
}

/// Rewrites the store at `path` into this binary's format, keeping the old folder as
/// `path.format1`; a store already in this format is left alone. The store must not be in
/// use ([`StoreError::Locked`]).
pub fn upgrade_store(path: &Path) -> Result<Upgraded, StoreError> {
    let old_copy = sibling(path, "format1");
    let work = sibling(path, "upgrading");
    let fail = |problem: String| StoreError::Upgrade {
        path: path.to_owned(),
        problem,
    };
    if !path.exists() && work.exists() && old_copy.exists() {
        // Crashed between the two renames: finish.
        std::fs::rename(&work, path)
            .map_err(|e| fail(format!("renaming {}: {e}", work.display())))?;
        return Ok(Upgraded {
            already: false,
            campaigns: 0,
            recipients: 0,
            old: Some(old_copy),
        });
    }
    if !path.join("conf").exists() {
        return Err(fail("no store there (no sled `conf` file)".to_owned()));
    }
    let Some((campaigns, recipients)) = rewrite_beside(path, &work, &old_copy)? else {
        return Ok(Upgraded {
            already: true,
            campaigns: 0,
            recipients: 0,
            old: None,
        });
    };
    std::fs::rename(path, &old_copy)
        .map_err(|e| fail(format!("renaming to {}: {e}", old_copy.display())))?;
    std::fs::rename(&work, path).map_err(|e| fail(format!("renaming {}: {e}", work.display())))?;
    Ok(Upgraded {
        already: false,
        campaigns,
        recipients,
        old: Some(old_copy),
    })
}

/// Writes the current-format copy of the store at `path` into `work` and makes it durable;
/// `None` when the store is already in this format. Refuses a newer format and an existing
/// `old_copy`.
fn rewrite_beside(
    path: &Path,
    work: &Path,
    old_copy: &Path,
) -> Result<Option<(u64, u64)>, StoreError> {
    let fail = |problem: String| StoreError::Upgrade {
        path: path.to_owned(),
        problem,
    };
    let db = open_raw(path)?;
    let tree = db
        .open_tree("campaigns")
        .map_err(|e| super::error::sled_error(path, e))?;
    match format::stored(path, &tree)? {
        Some(found) if (format::OLDEST_READ..=format::FORMAT).contains(&found) => return Ok(None),
        Some(found) if found > format::FORMAT => {
            return Err(StoreError::NewerFormat {
                path: path.to_owned(),
                found,
                newest: format::FORMAT,
            })
        }
        _ => {}
    }
    if old_copy.exists() {
        return Err(fail(format!(
            "{} exists already (an earlier upgrade's copy?): move it away first",
            old_copy.display()
        )));
    }
    if work.exists() {
        std::fs::remove_dir_all(work)
            .map_err(|e| fail(format!("removing {}: {e}", work.display())))?;
    }
    let new = SledStore::open(work)?;
    let counts = rewrite(path, &tree, &new)?;
    new.flush_blocking()?;
    carry_files(path, work).map_err(fail)?;
    Ok(Some(counts))
}

/// `DIR.suffix` beside `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Opens a store folder without Volley's checks (its format is what is being checked).
fn open_raw(path: &Path) -> Result<sled::Db, StoreError> {
    sled::Config::new()
        .path(path)
        .cache_capacity(super::CACHE_BYTES)
        .open()
        .map_err(|source| match &source {
            sled::Error::Io(io) if super::is_lock_error(io) => StoreError::Locked {
                path: path.to_owned(),
            },
            _ => super::error::sled_error(path, source),
        })
}

/// Copies the files that are not sled's own (what other parts of Volley keep there).
fn carry_files(from: &Path, to: &Path) -> Result<(), String> {
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("reading {}: {e}", from.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let own = matches!(name.to_str(), Some("conf" | "db" | "blobs" | "snap"))
            || name.to_string_lossy().starts_with("snap.");
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if !own && regular {
            std::fs::copy(entry.path(), to.join(&name))
                .map_err(|e| format!("copying {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// A format-1 attempt-log entry.
#[derive(Deserialize)]
struct OldAttempt {
    key: RecipientKey,
    state: RecipientState,
    reply: Option<ReplyRecord>,
}

/// A format-1 gc block entry (a collected campaign's recipient).
#[derive(Deserialize)]
struct OldPacked {
    seq: u64,
    domain: String,
    email: String,
    values: Vec<String>,
    state: RecipientState,
    attempts: u32,
    variant: u8,
}

/// Copies every key of `old` into `new`, rewriting what format 2 keeps differently; returns
/// the campaigns and recipients rewritten.
fn rewrite(path: &Path, old: &sled::Tree, new: &SledStore) -> Result<(u64, u64), StoreError> {
    let sled_error = |e| super::error::sled_error(path, e);
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    for entry in old.iter() {
        let (key, value) = entry.map_err(sled_error)?;
        let Some(&tag) = key.first() else { continue };
        match tag {
            keys::META | RECORD | QUEUE | DEDUPE | BY_NUMBER | GC_PACKED | keys::HELD => continue,
            _ if key.as_ref() == keys::FORMAT => continue,
            keys::ATTEMPT => {
                let attempt: OldAttempt = new.decode(&value, "attempt")?;
                let mut group = AttemptLog::default();
                group.push(&attempt.key, attempt.state, attempt.reply.as_ref());
                batch.insert(key, new.encode(&group, "attempt log")?);
            }
            _ => batch.insert(key, value),
        }
        pending += 1;
        if pending == 5_000 {
            new.tree
                .apply_batch(std::mem::take(&mut batch))
                .map_err(|e| new.sled_error(e))?;
            pending = 0;
        }
    }
    new.tree.apply_batch(batch).map_err(|e| new.sled_error(e))?;
    let mut campaigns = 0;
    let mut recipients = 0;
    for entry in old.scan_prefix([keys::META]) {
        let (key, value) = entry.map_err(sled_error)?;
        let campaign = String::from_utf8_lossy(&key[1..]).into_owned();
        let meta: CampaignMeta = new.decode(&value, "campaign")?;
        recipients += rewrite_recipients(path, old, new, &campaign, meta.number)?;
        new.tree
            .insert(key, new.encode_meta(&meta)?)
            .map_err(|e| new.sled_error(e))?;
        campaigns += 1;
    }
    Ok((campaigns, recipients))
}

/// Rewrites one campaign's recipients (live records, or a collected campaign's gc blocks).
fn rewrite_recipients(
    path: &Path,
    old: &sled::Tree,
    new: &SledStore,
    campaign: &str,
    number: u32,
) -> Result<u64, StoreError> {
    let sled_error = |e| super::error::sled_error(path, e);
    let mut writer = PackedWriter::new(new, number);
    let mut by_number = vec![BY_NUMBER];
    by_number.extend_from_slice(&number.to_be_bytes());
    for entry in old.scan_prefix(&by_number) {
        let (key, domain) = entry.map_err(sled_error)?;
        let Some(seq) = key
            .get(5..13)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
        else {
            continue;
        };
        let rkey = RecipientKey {
            domain: String::from_utf8_lossy(&domain).into_owned(),
            seq,
        };
        let mut record_key = keys::prefix(RECORD, campaign);
        record_key.extend_from_slice(rkey.domain.as_bytes());
        record_key.push(0);
        record_key.extend_from_slice(&seq.to_be_bytes());
        if let Some(value) = old.get(&record_key).map_err(sled_error)? {
            let record: RecipientRecord = new.decode(&value, "recipient")?;
            writer.add(&rkey, record, 0)?;
        }
    }
    let mut gc_blocks = vec![GC_PACKED];
    gc_blocks.extend_from_slice(&number.to_be_bytes());
    for value in old.scan_prefix(&gc_blocks).values() {
        let value = value.map_err(sled_error)?;
        let block: Vec<OldPacked> = new.decode(&value, "packed recipients")?;
        for p in block {
            let key = RecipientKey {
                domain: p.domain,
                seq: p.seq,
            };
            let record = RecipientRecord {
                email: p.email,
                values: p.values,
                line: 0,
                state: p.state,
                attempts: p.attempts,
                first_attempt: None,
                next_attempt: None,
                last_reply: None,
                variant: p.variant,
            };
            writer.add(&key, record, COLLECTED)?;
        }
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Copies the fixture store made by the format-1 code into `to`.
    fn fixture(to: &Path) {
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/stores/format1/store");
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }

    #[test]
    fn a_format_1_store_is_rewritten_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        fixture(&path);
        assert!(matches!(
            Store::open(&path).unwrap_err(),
            StoreError::OlderFormat { found: 1, .. }
        ));
        let upgraded = upgrade_store(&path).unwrap();
        assert_eq!((upgraded.campaigns, upgraded.recipients), (2, 26));
        assert_eq!(upgraded.old, Some(dir.path().join("store.format1")));
        let store = Store::open(&path).unwrap();
        let counts = store.counts("old-news").unwrap().unwrap();
        assert_eq!(
            (
                counts.delivered,
                counts.bounced,
                counts.deferred,
                counts.suppressed
            ),
            (3, 1, 1, 1)
        );
        let deferred = store
            .recipients_in("old-news", RecipientState::Deferred)
            .unwrap();
        assert_eq!(deferred[0].record.email, "defer-1@b.example");
        assert!(deferred[0].record.next_attempt.is_some());
        assert_eq!(
            store.next_due("old-news").unwrap(),
            deferred[0].record.next_attempt
        );
        let held = store
            .recipients_in("ab-test", RecipientState::Held)
            .unwrap();
        assert_eq!(held.len(), 11);
        assert_eq!(held[0].record.values.len(), 2, "merge fields kept");
        assert!(store.suppression("dave@c.example").unwrap().is_some());
        assert_eq!(store.export_events("old-news", 0).unwrap().count(), 6);
        assert_eq!(store.release_held("ab-test", &|v| v).unwrap(), 11);
        assert_eq!(store.pending("ab-test", None, 100).unwrap().len(), 11);
        drop(store);
        // Run again: nothing to do.
        assert!(upgrade_store(&path).unwrap().already);
    }

    #[test]
    fn a_crash_between_the_renames_is_finished_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        fixture(&path);
        upgrade_store(&path).unwrap();
        std::fs::rename(&path, dir.path().join("store.upgrading")).unwrap();
        let finished = upgrade_store(&path).unwrap();
        assert!(!finished.already);
        assert_eq!(
            Store::open(&path)
                .unwrap()
                .counts("ab-test")
                .unwrap()
                .unwrap()
                .held,
            11
        );
    }
}
