//! Campaign documents on PostgreSQL (issue 19): the campaigns handed to the cluster
//! (`campaign_documents`, `campaign_files`, migration 0004). Leases are the cluster's
//! (`cluster.rs`).

use super::engine::{ms, PgEngine};
use super::PgStoreError;
use crate::store::api::{CampaignDocuments, DocumentRecord, DocumentState};
use crate::store::StoreError;
use sqlx::postgres::PgRow;
use sqlx::{Acquire, Row};

/// Reads [`DocumentRecord`]s from `campaign_documents` with the condition `$where`.
macro_rules! select_documents {
    ($where:literal) => {
        concat!(
            "SELECT id, document::text, state, ",
            ms!("published_at"),
            ", published_by FROM campaign_documents WHERE ",
            $where
        )
    };
}

impl PgEngine {
    /// A stored document row as a record.
    fn document_row(&self, row: &PgRow) -> Result<DocumentRecord, PgStoreError> {
        let state: String = row.get(2);
        let id: String = row.get(0);
        let state = DocumentState::parse(&state)
            .ok_or_else(|| self.damaged(format!("campaign document {id}: state {state}")))?;
        Ok(DocumentRecord {
            id,
            document: row.get(1),
            state,
            published_at: u64::try_from(row.get::<i64, _>(3)).unwrap_or(0),
            published_by: row.get(4),
        })
    }

    /// Writes the document and, when it changed, its files; returns whether it changed.
    async fn publish(
        &self,
        record: &DocumentRecord,
        files: &[(String, Vec<u8>)],
    ) -> Result<bool, PgStoreError> {
        let what = format!("publish campaign document {}", record.id);
        let failed = |e| self.failed(&what, e);
        let mut conn = self.store.pool().acquire().await.map_err(failed)?;
        let mut tx = conn.begin().await.map_err(failed)?;
        let changed = sqlx::query(
            "INSERT INTO campaign_documents (id, document, published_by, state) \
             VALUES ($1, $2::jsonb, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document, \
                 published_at = now(), published_by = EXCLUDED.published_by, \
                 state = CASE campaign_documents.state WHEN 'done' THEN 'active' \
                         ELSE campaign_documents.state END \
             WHERE campaign_documents.document IS DISTINCT FROM EXCLUDED.document \
             RETURNING id",
        )
        .bind(&record.id)
        .bind(&record.document)
        .bind(&record.published_by)
        .bind(record.state.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(failed)?
        .is_some();
        if changed {
            sqlx::query("DELETE FROM campaign_files WHERE id = $1")
                .bind(&record.id)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
            let bodies: Vec<&[u8]> = files.iter().map(|(_, body)| body.as_slice()).collect();
            sqlx::query(
                "INSERT INTO campaign_files (id, name, body) \
                 SELECT $1, name, body FROM unnest($2::text[], $3::bytea[]) AS f (name, body)",
            )
            .bind(&record.id)
            .bind(&names)
            .bind(&bodies)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        }
        tx.commit().await.map_err(failed)?;
        Ok(changed)
    }
}

impl CampaignDocuments for PgEngine {
    fn publish_document(
        &self,
        document: &DocumentRecord,
        files: &[(String, Vec<u8>)],
    ) -> Result<bool, StoreError> {
        self.run(self.publish(document, files))
    }

    fn documents_in(&self, state: DocumentState) -> Result<Vec<DocumentRecord>, StoreError> {
        let sql = select_documents!("state = $1 ORDER BY id");
        self.run(async {
            let rows = sqlx::query(sql)
                .bind(state.as_str())
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("list the campaign documents", e))?;
            rows.iter().map(|row| self.document_row(row)).collect()
        })
    }

    fn document(&self, id: &str) -> Result<Option<DocumentRecord>, StoreError> {
        let sql = select_documents!("id = $1");
        self.run(async {
            let row = sqlx::query(sql)
                .bind(id)
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("read campaign document {id}"), e))?;
            row.map(|row| self.document_row(&row)).transpose()
        })
    }

    fn document_files(&self, id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.run(async {
            sqlx::query_as("SELECT name, body FROM campaign_files WHERE id = $1 ORDER BY name")
                .bind(id)
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("read the files of campaign document {id}"), e))
        })
    }

    fn set_document_state(&self, id: &str, state: DocumentState) -> Result<bool, StoreError> {
        self.run(async {
            let done = sqlx::query("UPDATE campaign_documents SET state = $2 WHERE id = $1")
                .bind(id)
                .bind(state.as_str())
                .execute(self.store.pool())
                .await
                .map_err(|e| self.failed(&format!("set the state of campaign document {id}"), e))?;
            Ok(done.rows_affected() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PgSettings;

    fn engine(
        name: &str,
    ) -> (
        std::sync::Arc<volley_testkit::postgres::TempCluster>,
        PgEngine,
    ) {
        let cluster = super::super::tests::cluster();
        let settings = PgSettings::new(cluster.create_database(name).unwrap());
        (cluster, PgEngine::open(settings).unwrap())
    }

    fn record(id: &str, json: &str, by: &str) -> DocumentRecord {
        DocumentRecord {
            id: id.to_owned(),
            document: json.to_owned(),
            state: DocumentState::Active,
            published_at: 0,
            published_by: by.to_owned(),
        }
    }

    #[test]
    fn a_published_document_is_replaced_only_when_it_changed_and_its_files_with_it() {
        let (_cluster, store) = engine("documents_publish");
        let files = vec![("00-a.txt".to_owned(), b"A".to_vec())];
        let first = record("news", r#"{"v": 1}"#, "n1");
        assert!(store.publish_document(&first, &files).unwrap());
        assert!(!store.publish_document(&first, &files).unwrap());
        assert_eq!(store.document_files("news").unwrap(), files);
        let stored = store.document("news").unwrap().unwrap();
        assert_eq!(
            (stored.state, stored.published_by.as_str()),
            (DocumentState::Active, "n1")
        );
        assert!(stored.published_at > 0);

        store
            .set_document_state("news", DocumentState::Done)
            .unwrap();
        assert!(store
            .documents_in(DocumentState::Active)
            .unwrap()
            .is_empty());
        let newer = vec![("00-b.txt".to_owned(), b"B".to_vec())];
        assert!(store
            .publish_document(&record("news", r#"{"v": 2}"#, "n2"), &newer)
            .unwrap());
        let active = store.documents_in(DocumentState::Active).unwrap();
        assert_eq!(active.len(), 1, "a changed document is active again");
        assert_eq!(active[0].published_by, "n2");
        assert_eq!(store.document_files("news").unwrap(), newer);

        store
            .set_document_state("news", DocumentState::Cancelled)
            .unwrap();
        store
            .publish_document(&record("news", r#"{"v": 3}"#, "n2"), &newer)
            .unwrap();
        let state = store.document("news").unwrap().unwrap().state;
        assert_eq!(state, DocumentState::Cancelled, "cancelled stays cancelled");
        assert!(!store
            .set_document_state("other", DocumentState::Paused)
            .unwrap());
    }
}
