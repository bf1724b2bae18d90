//! Campaign input: the recipients CSV, streamed row by row (never held whole in memory) and
//! checked as it goes. A bad row becomes a [`RowError`] with its line and the reading goes on;
//! good rows come out as [`Row`]s with a normalised address and their merge fields.
//!
//! Sits right after `config` in the pipeline: the loader feeds these rows to the store.

mod audience;
mod audience_scan;
mod conversions;
mod error;
mod reader;
mod suppressions;

pub use crate::config::{normalize_address, AddressError};
pub use crate::config::{Segment, SegmentError, SegmentFilter};
pub use audience::{Audience, AudienceError, Keep, Rule};
pub use conversions::{
    import_conversions, parse_time, parse_value, Attributor, ConversionImport,
    ConversionImportError, NO_CURRENCY,
};
pub use error::{CampaignError, RowError};
pub use reader::{RecipientReader, Row};
pub use suppressions::{import_suppressions, ImportError, ImportSummary};
