//! Campaign documents on sled (issue 20): the campaigns created over the API of a single
//! `volley serve`, kept in a tree of their own (`documents`) so the campaign tree's layout
//! and format stay as they are.
//!
//! ```text
//! d <id>              → StoredDocument   the document, its state, when and by whom
//! f <id> 0 <name>     → bytes            its files
//! ```
//! Campaign ids never contain a zero byte (the campaign file's check). Every write is one
//! atomic batch, flushed before it returns.

use super::SledStore;
use crate::model::{now_millis, Millis};
use crate::store::api::{CampaignDocuments, DocumentRecord, DocumentState};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};

/// A document as the tree keeps it.
#[derive(Serialize, Deserialize)]
struct StoredDocument {
    document: String,
    state: String,
    published_at: Millis,
    published_by: String,
}

/// `d <id>`.
fn document_key(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 1);
    key.push(b'd');
    key.extend_from_slice(id.as_bytes());
    key
}

/// `f <id> 0`: the prefix of the files of `id`.
fn files_prefix(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 2);
    key.push(b'f');
    key.extend_from_slice(id.as_bytes());
    key.push(0);
    key
}

impl SledStore {
    /// The record stored under `d <id>`.
    fn document_record(&self, id: &str, bytes: &[u8]) -> Result<DocumentRecord, StoreError> {
        let stored: StoredDocument = self.decode(bytes, "campaign document")?;
        let state = DocumentState::parse(&stored.state).ok_or_else(|| {
            let detail = format!("campaign document {id}: unknown state {}", stored.state);
            StoreError::Engine {
                path: self.path.clone(),
                source: Box::new(std::io::Error::other(detail.clone())),
                detail,
            }
        })?;
        Ok(DocumentRecord {
            id: id.to_owned(),
            document: stored.document,
            state,
            published_at: stored.published_at,
            published_by: stored.published_by,
        })
    }

    /// See [`CampaignDocuments::publish_document`].
    fn publish(
        &self,
        record: &DocumentRecord,
        files: &[(String, Vec<u8>)],
    ) -> Result<bool, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let key = document_key(&record.id);
        let old = match self.documents.get(&key).map_err(|e| self.sled_error(e))? {
            Some(bytes) => Some(self.document_record(&record.id, &bytes)?),
            None => None,
        };
        let old_files = self.files_of(&record.id)?;
        let same_files = old_files.as_slice() == files;
        if old
            .as_ref()
            .is_some_and(|o| o.document == record.document && same_files)
        {
            return Ok(false);
        }
        let state = match old.map(|o| o.state) {
            None | Some(DocumentState::Done) => record.state,
            Some(state) => state,
        };
        let stored = StoredDocument {
            document: record.document.clone(),
            state: state.as_str().to_owned(),
            published_at: now_millis().max(1),
            published_by: record.published_by.clone(),
        };
        let mut batch = sled::Batch::default();
        for (name, _) in &old_files {
            let mut file = files_prefix(&record.id);
            file.extend_from_slice(name.as_bytes());
            batch.remove(file);
        }
        for (name, body) in files {
            let mut file = files_prefix(&record.id);
            file.extend_from_slice(name.as_bytes());
            batch.insert(file, body.as_slice());
        }
        batch.insert(key, self.encode(&stored, "campaign document")?);
        self.documents
            .apply_batch(batch)
            .map_err(|e| self.sled_error(e))?;
        self.flush_blocking()?;
        Ok(true)
    }

    /// The files of document `id`, by name.
    fn files_of(&self, id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = files_prefix(id);
        let mut out = Vec::new();
        for entry in self.documents.scan_prefix(&prefix) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let name = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            out.push((name, value.to_vec()));
        }
        Ok(out)
    }
}

impl CampaignDocuments for SledStore {
    fn publish_document(
        &self,
        document: &DocumentRecord,
        files: &[(String, Vec<u8>)],
    ) -> Result<bool, StoreError> {
        self.publish(document, files)
    }

    fn documents_in(&self, state: DocumentState) -> Result<Vec<DocumentRecord>, StoreError> {
        let mut out = Vec::new();
        for entry in self.documents.scan_prefix([b'd']) {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let id = String::from_utf8_lossy(&key[1..]).into_owned();
            let record = self.document_record(&id, &value)?;
            if record.state == state {
                out.push(record);
            }
        }
        Ok(out)
    }

    fn document(&self, id: &str) -> Result<Option<DocumentRecord>, StoreError> {
        match self
            .documents
            .get(document_key(id))
            .map_err(|e| self.sled_error(e))?
        {
            Some(bytes) => self.document_record(id, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn document_files(&self, id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.files_of(id)
    }

    fn set_document_state(&self, id: &str, state: DocumentState) -> Result<bool, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let key = document_key(id);
        let Some(bytes) = self.documents.get(&key).map_err(|e| self.sled_error(e))? else {
            return Ok(false);
        };
        let mut stored: StoredDocument = self.decode(&bytes, "campaign document")?;
        stored.state = state.as_str().to_owned();
        self.documents
            .insert(key, self.encode(&stored, "campaign document")?)
            .map_err(|e| self.sled_error(e))?;
        self.flush_blocking()?;
        Ok(true)
    }
}
