//! Campaign documents and `load:` leases on PostgreSQL (issue 19): the campaigns handed to
//! the cluster (`campaign_documents`, `campaign_files`, migration 0004) and the `leases` table
//! of migration 0001. Times come from the database's clock only, so nodes whose clocks
//! disagree still agree on who holds a lease.

use super::engine::{ms, PgEngine};
use crate::store::api::{CampaignDocuments, DocumentRecord, DocumentState};
use crate::store::StoreError;
use super::PgStoreError;
use sqlx::postgres::PgRow;
use sqlx::{Acquire, Row};
use std::time::Duration;

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
            "INSERT INTO campaign_documents (id, document, published_by) \
             VALUES ($1, $2::jsonb, $3) \
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

    fn take_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.run(async {
            let held = sqlx::query(
                "INSERT INTO leases (name, owner, until) \
                 VALUES ($1, $2, now() + $3::int8 * interval '1 millisecond') \
                 ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until \
                 WHERE leases.until < now() OR leases.owner = EXCLUDED.owner \
                 RETURNING name",
            )
            .bind(name)
            .bind(owner)
            .bind(millis)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| self.failed(&format!("take lease {name}"), e))?;
            Ok(held.is_some())
        })
    }

    fn release_lease(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
                .bind(name)
                .bind(owner)
                .execute(self.store.pool())
                .await
                .map(|_| ())
                .map_err(|e| self.failed(&format!("release lease {name}"), e))
        })
    }
}
