//! The cluster: several `volley serve` nodes on one PostgreSQL store sharing the work
//! through leases in the database (issue 19). A node holds `domain:<recipient domain>`
//! leases, the right to send to that domain for every campaign (due retries included), so a
//! domain's rate and connection caps hold for the cluster: one node sends to it at a time.
//!
//! - `node`: registration, the heartbeat renewing the node and its leases, claiming and
//!   draining domains, the load lease, handing everything back when stopping;
//! - `share`: the fair-share arithmetic (pure);
//! - `filter`: `WorkFilter`, what the scheduler may take now (held, not draining, and
//!   renewed recently enough that the lease cannot have run out).
//!
//! ```text
//! runtime ─► node ─heartbeat─► store (nodes, leases)
//!              │ grants / drains / losses
//!              ▼
//!          WorkFilter ◄─asks before each take─ dispatch (scheduler)
//! ```

mod filter;
mod node;
mod share;

pub(crate) use filter::WorkFilter;
pub use node::NodeSettings;
pub(crate) use node::{default_name, Node};
