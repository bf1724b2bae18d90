//! One event of a campaign's history as `volley events` prints it (a JSON line, a CSV row)
//! and the API pages it: the same fields, in the CSV's column order.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::ExportEvent;

/// One event, worded for export. Field order is the CSV column order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventRow {
    /// When (RFC 3339, milliseconds, UTC).
    pub at: String,
    /// The campaign (or edition) id.
    pub campaign: String,
    /// The recipient's variant id (empty when its record is gone).
    pub variant: String,
    /// The recipient's address.
    pub recipient: String,
    /// What happened: `delivered`, `deferred`, `bounced`, `expired`, `suppressed`, `open`,
    /// `click`, `unsubscribe`, `complaint`…
    pub event: String,
    /// For opens and clicks judged machine-made: why.
    pub machine: Option<String>,
    /// For a click: the link's index.
    pub link: Option<u16>,
    /// For a click: the link as the templates have it.
    pub url: Option<String>,
    /// The reply's code, when there was one.
    pub code: Option<u16>,
    /// The reply's enhanced status code.
    pub enhanced: Option<String>,
    /// The reply's text.
    pub reply: Option<String>,
    /// The reply's category.
    pub category: Option<String>,
}

impl EventRow {
    /// The row of `event` of `campaign`; `variants` are the campaign's variant ids by index.
    pub fn new(campaign: &str, variants: &[String], event: &ExportEvent) -> Self {
        let reply = event.reply.as_ref();
        EventRow {
            at: humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(event.at))
                .to_string(),
            campaign: campaign.to_owned(),
            variant: event
                .variant
                .and_then(|v| variants.get(usize::from(crate::model::variant_index(v))))
                .cloned()
                .unwrap_or_default(),
            recipient: event.recipient.clone(),
            event: event.kind.as_str().to_owned(),
            machine: event.machine.map(|m| m.as_str().to_owned()),
            link: event.link,
            url: event.url.clone(),
            code: reply.and_then(|r| r.code),
            enhanced: reply.and_then(|r| r.enhanced.clone()),
            reply: reply.map(|r| r.text.clone()),
            category: reply
                .and_then(|r| r.category)
                .map(|c| c.as_str().to_owned()),
        }
    }
}
