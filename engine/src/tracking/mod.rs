//! Tracking: opens, clicks and one-click unsubscribes, served over HTTP (the only HTTP
//! server of the engine).
//!
//! Messages carry signed tokens ([`TokenKey`]): in the open pixel (`/o/TOKEN.gif`), in each
//! rewritten link (`/c/TOKEN`) and in `List-Unsubscribe` (`/u/TOKEN`). The server
//! ([`TrackingServer`]) checks a token without a lookup, finds its recipient in the store,
//! judges whether a person or a machine (privacy proxy, scanner, HEAD request, a burst of
//! clicks) made the request, and records the event with group commit before answering. A
//! click redirects only to the campaign's own link of that index (merge values in it
//! percent-encoded, so they cannot change its host); an unsubscribe GET shows a page and
//! changes nothing, a POST (RFC 8058 one-click) suppresses the address (for the campaign's
//! topic only when it has one). The preference page (`/p/TOKEN`, `preferences`) lists the
//! topics with checkboxes; its POST is CSRF-checked. `view` serves "view in browser"
//! (`/v/TOKEN`: the recipient's own message re-rendered, recording nothing) and a campaign's
//! public archive page (`/a/CAMPAIGN`, without personal data). Everything a client can make
//! it spend is bounded ([`TrackingLimits`]).
//!
//! ```text
//! request ─► verify token ─► resolve recipient ─► judge ─► recorder (group commit) ─► answer
//! ```

mod csrf;
mod error;
mod http;
mod limits;
mod machine;
mod metrics;
mod postback;
mod preferences;
mod preferences_page;
mod recorder;
mod render;
mod server;
mod targets;
mod token;
mod view;

pub use error::TrackingError;
pub(crate) use http::serve as serve_http;
pub use limits::TrackingLimits;
pub use machine::{judge, Request, TOO_SOON_MILLIS};
pub use postback::{Postbacks, DEFAULT_POSTBACKS_PER_SECOND, SIGNATURE_HEADER};
pub use server::TrackingServer;
pub use token::{Token, TokenKey, TokenKind, MIN_KEY_BYTES, TOKEN_CHARS};
