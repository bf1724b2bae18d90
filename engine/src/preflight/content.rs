//! The text part row: a campaign (or A/B variant) with an HTML body but no text body is sent
//! with a text part generated from its HTML (see `compose`). That works, but a text part
//! written by hand reads better, so it is a warning naming the versions concerned.

use super::{Check, Status};
use crate::config::CampaignSettings;

/// The row's name in the table.
const NAME: &str = "text part";

/// A warning when some version of the message has HTML only; `None` when every version has
/// a text body of its own (or no HTML).
pub(super) fn check(settings: &CampaignSettings) -> Option<Check> {
    let html_only: Vec<String> = if settings.variants.is_empty() {
        (settings.html.is_some() && settings.text.is_none())
            .then(|| "the campaign".to_owned())
            .into_iter()
            .collect()
    } else {
        settings
            .variants
            .iter()
            .filter(|v| v.html.is_some() || settings.html.is_some())
            .filter(|v| v.text.is_none() && settings.text.is_none())
            .map(|v| format!("variant {}", v.id))
            .collect()
    };
    if html_only.is_empty() {
        return None;
    }
    Some(Check::new(
        NAME,
        Status::Warn,
        format!(
            "{} has HTML only: the text part will be generated from HTML; write a `text` template for a text part of your own",
            html_only.join(", ")
        ),
    ))
}
