//! The cluster's side of the store on PostgreSQL ([`ClusterStore`]): the `nodes` table and
//! the `leases` of schema v1. Every time comes from the database's clock (`now()`), so nodes
//! whose clocks disagree still agree on who holds what.

use super::engine::PgEngine;
use super::queue::to_i64;
use crate::model::BackoffSnapshot;
use crate::store::api::ClusterStore;
use crate::store::{DomainWork, LeaseInfo, NodeInfo, NodeStart, StoreError};
use std::time::Duration;

/// SQL: `$n` milliseconds (`int8`) as an interval.
macro_rules! millis_interval {
    ($n:literal) => {
        concat!("($", $n, "::int8 * interval '1 millisecond')")
    };
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn duration(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

const REGISTER: &str = concat!(
    "INSERT INTO nodes (name, instance, host, pid, lease, version) VALUES ($1, $2, $3, $4, ",
    millis_interval!(5),
    ", $6) ON CONFLICT (name) DO UPDATE SET instance = excluded.instance, host = excluded.host, \
     pid = excluded.pid, lease = excluded.lease, version = excluded.version, \
     started_at = now(), heartbeat_at = now(), stopping = false, sent_last_minute = 0 \
     WHERE nodes.stopping OR nodes.heartbeat_at + nodes.lease < now() RETURNING name"
);

const CLAIM: &str = concat!(
    "INSERT INTO leases (name, owner, until) SELECT n, $1, now() + ",
    millis_interval!(2),
    " FROM unnest($3::text[]) AS n ORDER BY n \
     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until \
     WHERE leases.until < now() OR leases.owner = excluded.owner RETURNING name"
);

const NODES: &str = "\
SELECT n.name, n.host, n.pid, floor(extract(epoch FROM now() - n.heartbeat_at) * 1000)::int8,
       floor(extract(epoch FROM n.lease) * 1000)::int8, n.stopping, n.sent_last_minute,
       (SELECT count(*) FROM leases l WHERE l.owner = n.name AND l.until > now())
FROM nodes n ORDER BY n.name";

/// Pending recipients per domain (the `recipients_pending` index) and deferred or waiting
/// ones due by the horizon (the `recipients_next_attempt` index), over campaigns `$1`.
const DOMAINS_WITH_WORK: &str = concat!(
    "SELECT domain, sum(n)::int8 FROM (\
     SELECT domain, count(*) AS n FROM recipients \
     WHERE campaign = ANY($1) AND state = 'pending' GROUP BY domain \
     UNION ALL \
     SELECT domain, count(*) FROM recipients \
     WHERE campaign = ANY($1) AND state IN ('deferred', 'waiting') AND next_attempt <= now() + ",
    millis_interval!(2),
    " GROUP BY domain) w GROUP BY domain ORDER BY 2 DESC, 1"
);

impl PgEngine {
    /// Who holds the name `node`, for the error refusing a second one.
    async fn node_in_use(&self, node: &str) -> Result<StoreError, super::PgStoreError> {
        let row: Option<(Option<String>, Option<i32>, i64)> = sqlx::query_as(
            "SELECT host, pid, floor(extract(epoch FROM now() - heartbeat_at))::int8 \
             FROM nodes WHERE name = $1",
        )
        .bind(node)
        .fetch_optional(self.store.pool())
        .await
        .map_err(|e| self.failed("read a node", e))?;
        let (host, pid, age) = row.unwrap_or_default();
        Ok(StoreError::NodeInUse {
            path: self.path_buf(),
            node: node.to_owned(),
            host: host.unwrap_or_default(),
            pid: pid.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
            age_secs: u64::try_from(age).unwrap_or(0),
        })
    }
}

impl ClusterStore for PgEngine {
    fn register_node(&self, node: &NodeStart) -> Result<(), StoreError> {
        let what = "register the node";
        let taken = self.run(async {
            let mut tx = self.begin(what).await?;
            let row: Option<String> = sqlx::query_scalar(REGISTER)
                .bind(&node.name)
                .bind(&node.instance)
                .bind(&node.host)
                .bind(i32::try_from(node.pid).unwrap_or(i32::MAX))
                .bind(ms(node.lease))
                .bind(&node.version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.failed(what, e))?;
            if row.is_none() {
                return Ok(false);
            }
            // A dead predecessor's leases go with it (they ran out with its heartbeat).
            sqlx::query("DELETE FROM leases WHERE owner = $1")
                .bind(&node.name)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.failed(what, e))?;
            // `volley send` nodes that died an hour ago are of no more interest.
            sqlx::query(
                "DELETE FROM nodes WHERE name LIKE 'send-%' \
                 AND heartbeat_at < now() - interval '1 hour'",
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(what, e))?;
            tx.commit().await.map_err(|e| self.failed(what, e))?;
            Ok(true)
        })?;
        if taken {
            return Ok(());
        }
        Err(self.run(self.node_in_use(&node.name))?)
    }

    fn heartbeat(
        &self,
        node: &str,
        instance: &str,
        lease: Duration,
        sent_last_minute: u64,
    ) -> Result<Vec<String>, StoreError> {
        let what = "renew the node's leases";
        let held = self.run(async {
            let mut tx = self.begin(what).await?;
            let noted = sqlx::query(
                "UPDATE nodes SET heartbeat_at = now(), sent_last_minute = $3 \
                 WHERE name = $1 AND instance = $2",
            )
            .bind(node)
            .bind(instance)
            .bind(to_i64(sent_last_minute))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(what, e))?;
            if noted.rows_affected() == 0 {
                return Ok(None);
            }
            let held: Vec<String> = sqlx::query_scalar(concat!(
                "UPDATE leases SET until = now() + ",
                millis_interval!(2),
                " WHERE owner = $1 RETURNING name"
            ))
            .bind(node)
            .bind(ms(lease))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.failed(what, e))?;
            tx.commit().await.map_err(|e| self.failed(what, e))?;
            Ok(Some(held))
        })?;
        held.ok_or_else(|| StoreError::NodeReplaced {
            path: self.path_buf(),
            node: node.to_owned(),
        })
    }

    fn claim(
        &self,
        owner: &str,
        names: &[String],
        lease: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let mut names = names.to_vec();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.run(async {
            sqlx::query_scalar(CLAIM)
                .bind(owner)
                .bind(ms(lease))
                .bind(&names)
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("claim leases", e))
        })
    }

    fn release(&self, owner: &str, names: &[String]) -> Result<u64, StoreError> {
        self.run(async {
            sqlx::query("DELETE FROM leases WHERE owner = $1 AND name = ANY($2)")
                .bind(owner)
                .bind(names)
                .execute(self.store.pool())
                .await
                .map(|done| done.rows_affected())
                .map_err(|e| self.failed("release leases", e))
        })
    }

    fn stop_node(&self, node: &str, instance: &str, forget: bool) -> Result<u64, StoreError> {
        let what = "hand the node's leases back";
        let statement = if forget {
            "DELETE FROM nodes WHERE name = $1 AND instance = $2"
        } else {
            "UPDATE nodes SET stopping = true WHERE name = $1 AND instance = $2"
        };
        self.run(async {
            let mut tx = self.begin(what).await?;
            let released = sqlx::query("DELETE FROM leases WHERE owner = $1")
                .bind(node)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.failed(what, e))?
                .rows_affected();
            sqlx::query(statement)
                .bind(node)
                .bind(instance)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.failed(what, e))?;
            tx.commit().await.map_err(|e| self.failed(what, e))?;
            Ok(released)
        })
    }

    fn reap_node(&self, node: &str, host: &str, pid: u32) -> Result<u64, StoreError> {
        let what = "hand a dead node's leases back";
        self.run(async {
            let mut tx = self.begin(what).await?;
            let dead = sqlx::query(
                "UPDATE nodes SET stopping = true \
                 WHERE name = $1 AND host = $2 AND pid = $3 AND NOT stopping",
            )
            .bind(node)
            .bind(host)
            .bind(i32::try_from(pid).unwrap_or(-1))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(what, e))?
            .rows_affected();
            let released = if dead > 0 {
                sqlx::query("DELETE FROM leases WHERE owner = $1")
                    .bind(node)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.failed(what, e))?
                    .rows_affected()
            } else {
                0
            };
            tx.commit().await.map_err(|e| self.failed(what, e))?;
            Ok(released)
        })
    }

    fn save_backoff(&self, name: &str, snapshot: &BackoffSnapshot) -> Result<(), StoreError> {
        let what = "save a destination's back-off";
        let suspended = snapshot.suspended_for.map(ms);
        let connections = i32::try_from(snapshot.connections).unwrap_or(i32::MAX);
        self.run(async {
            sqlx::query(concat!(
                "INSERT INTO destination_backoff \
                 (name, rate, connections, floor, ceiling, suspended_until, saved_at) \
                 VALUES ($1, $2, $3, $4, $5, now() + ",
                millis_interval!(6),
                ", now()) ON CONFLICT (name) DO UPDATE SET rate = excluded.rate, \
                 connections = excluded.connections, floor = excluded.floor, \
                 ceiling = excluded.ceiling, suspended_until = excluded.suspended_until, \
                 saved_at = excluded.saved_at"
            ))
            .bind(name)
            .bind(snapshot.rate)
            .bind(connections)
            .bind(snapshot.floor)
            .bind(if snapshot.ceiling.is_finite() {
                snapshot.ceiling
            } else {
                f64::MAX
            })
            .bind(suspended)
            .execute(self.store.pool())
            .await
            .map(|_| ())
            .map_err(|e| self.failed(what, e))
        })
    }

    fn backoffs(
        &self,
        max_age: Duration,
    ) -> Result<Vec<(String, BackoffSnapshot, Duration)>, StoreError> {
        type Row = (String, Option<f64>, i32, f64, f64, Option<i64>, i64);
        let what = "read the destinations' back-off";
        let rows: Vec<Row> = self.run(async {
            sqlx::query_as(concat!(
                "SELECT name, rate, connections, floor, ceiling, \
                 floor(extract(epoch FROM suspended_until - now()) * 1000)::int8, \
                 floor(extract(epoch FROM now() - saved_at) * 1000)::int8 \
                 FROM destination_backoff WHERE saved_at > now() - ",
                millis_interval!(1),
                " ORDER BY name"
            ))
            .bind(ms(max_age))
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.failed(what, e))
        })?;
        Ok(rows
            .into_iter()
            .map(|(name, rate, connections, floor, ceiling, left, age)| {
                let snapshot = BackoffSnapshot {
                    rate,
                    connections: usize::try_from(connections).unwrap_or(1),
                    floor,
                    ceiling,
                    suspended_for: left.filter(|&l| l > 0).map(duration),
                };
                (name, snapshot, duration(age))
            })
            .collect())
    }

    fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        type Row = (
            String,
            Option<String>,
            Option<i32>,
            i64,
            i64,
            bool,
            i64,
            i64,
        );
        let rows: Vec<Row> = self.run(async {
            sqlx::query_as(NODES)
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed("read the nodes", e))
        })?;
        Ok(rows
            .into_iter()
            .map(|(name, host, pid, age, lease, stopping, sent, leases)| {
                let (heartbeat_age, lease) = (duration(age), duration(lease));
                NodeInfo {
                    name,
                    host,
                    pid: pid.and_then(|p| u32::try_from(p).ok()),
                    live: !stopping && heartbeat_age < lease,
                    heartbeat_age,
                    lease,
                    stopping,
                    leases: u64::try_from(leases).unwrap_or(0),
                    sent_last_minute: u64::try_from(sent).unwrap_or(0),
                }
            })
            .collect())
    }

    fn leases(&self) -> Result<Vec<LeaseInfo>, StoreError> {
        let rows: Vec<(String, String, Option<i64>)> = self.run(async {
            sqlx::query_as(
                "SELECT name, owner, CASE WHEN until > now() \
                 THEN floor(extract(epoch FROM until - now()) * 1000)::int8 END \
                 FROM leases ORDER BY name",
            )
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.failed("read the leases", e))
        })?;
        Ok(rows
            .into_iter()
            .map(|(name, owner, left)| LeaseInfo {
                name,
                owner,
                remaining: left.map(duration),
            })
            .collect())
    }

    fn reserve_relay(
        &self,
        relay: &str,
        caps: crate::store::RelayQuota,
        want: u32,
    ) -> Result<u32, StoreError> {
        self.reserve_relay_quota(relay, caps, want)
    }

    fn domains_with_work(
        &self,
        campaigns: &[String],
        horizon: Duration,
    ) -> Result<Vec<DomainWork>, StoreError> {
        let what = "read the domains with work";
        let rows: Vec<(String, i64)> = self.run(async {
            let numbers: Vec<i32> = sqlx::query_scalar(
                "SELECT number FROM campaigns WHERE id = ANY($1) AND loaded \
                 AND collected_at IS NULL ORDER BY number",
            )
            .bind(campaigns)
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| self.failed(what, e))?;
            if numbers.is_empty() {
                return Ok(Vec::new());
            }
            sqlx::query_as(DOMAINS_WITH_WORK)
                .bind(&numbers)
                .bind(ms(horizon))
                .fetch_all(self.store.pool())
                .await
                .map_err(|e| self.failed(what, e))
        })?;
        Ok(rows
            .into_iter()
            .map(|(domain, n)| DomainWork {
                domain,
                recipients: u64::try_from(n).unwrap_or(0),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
