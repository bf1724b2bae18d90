//! Bounce intake, step two: turning one raw bounce or complaint message into a
//! [`BounceReport`] — which recipients it concerns, what happened to each, and the clues
//! (VERP address, returned Message-ID and headers) that tie it to one send.
//!
//! Standard reports are RFC 3464 delivery status notifications and RFC 5965 (ARF)
//! feedback reports; older or non-standard bounces (qmail, Exim without DSN, old Sendmail
//! and Exchange text) are read on a best-effort basis. Each failure is classified by
//! [`Classifier`]. Reading files and mailboxes is [`super::mailbox`]'s job.

mod nonstandard;
pub(super) mod text;

use std::collections::HashSet;
use std::sync::LazyLock;

use mail_parser::{HeaderName, MessageParser, MimeHeaders, PartType};
use serde::Serialize;

use super::classify::Classifier;
use crate::model::Category;
use text::{
    field, field_blocks, field_blocks_up_to, header_block, normalize_address, scan_addresses,
    Fields,
};

/// The message parser bounce reading needs: MIME headers (to find the parts) and `Subject`
/// decoded; every other header is skipped, its place kept (bounce reading takes the few it
/// needs raw). Parsing `Received`, address and date headers that bounce reading never looks
/// at was a fifth of the time spent on a bounce.
static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .with_mime_headers()
        .header_text(HeaderName::Subject)
        .default_header_ignore()
});

/// The most text read from a bounce's human-readable body when looking for clues.
const MAX_BODY_TEXT: usize = 64 * 1024;
/// The most recipients taken from one report.
const MAX_RECIPIENTS: usize = 500;
/// The most per-recipient blocks read from one delivery-status part (some carry no usable
/// recipient or repeat one).
const MAX_DSN_BLOCKS: usize = 2 * MAX_RECIPIENTS;
/// The returned-message header in which Hotmail's JMRP complaints (not ARF) name the
/// complaining address.
const JMRP_RECIPIENT: &str = "x-hmxmroriginalrecipient";
/// The most addresses the bounce itself was delivered to that are kept.
const MAX_TO_ADDRESSES: usize = 100;

/// What kind of message was parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// A standard delivery status notification (RFC 3464).
    Dsn,
    /// A bounce in some older or proprietary text format, read on a best-effort basis.
    NonStandard,
    /// A spam complaint (ARF feedback report, RFC 5965).
    Complaint,
    /// Not a bounce: a normal message, an auto-reply, or unreadable input.
    NotABounce,
}

/// What happened to one recipient, per the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Delivery failed for good.
    Failed,
    /// Delivery is delayed; the reporting server keeps trying.
    Delayed,
    /// Delivered (a success DSN).
    Delivered,
    /// Relayed to a system that does not send DSNs.
    Relayed,
    /// Delivered to a list or alias that expanded to more recipients.
    Expanded,
    /// The recipient complained (marked the message as spam).
    Complaint,
}

/// One parsed bounce or complaint message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BounceReport {
    /// What kind of message it is.
    pub kind: ReportKind,
    /// The recipients it reports on; for [`ReportKind::NotABounce`] empty, except a success
    /// DSN whose recipients were all delivered, relayed or expanded.
    pub recipients: Vec<BouncedRecipient>,
    /// Where the bounce itself was delivered (`To`, `Delivered-To`, `X-Original-To`,
    /// `Envelope-To`), as written: the place to find a VERP token `bounces+TOKEN@domain`.
    #[serde(skip)]
    pub to_addresses: Vec<String>,
    /// The Message-ID of the returned original message, without `<>`.
    #[serde(skip)]
    pub original_message_id: Option<String>,
    /// Returned headers that help attribution (`feedback-id`, `x-volley-*`, `return-path`,
    /// `from`, `to`, `subject`), names lowercased, values unfolded.
    #[serde(skip)]
    pub original_headers: Vec<(String, String)>,
    /// The ARF `Feedback-Type` of a complaint (`abuse`, `fraud`, ...).
    #[serde(skip)]
    pub feedback_type: Option<String>,
}

/// What a report says about one recipient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BouncedRecipient {
    /// The recipient address (`Final-Recipient` without its type), domain lowercased.
    pub address: String,
    /// The `Original-Recipient`, when the report gives one.
    pub original_recipient: Option<String>,
    /// What happened.
    pub action: Action,
    /// The enhanced status code (`5.1.1`).
    pub status: Option<String>,
    /// The remote server's reply (`Diagnostic-Code` without `smtp;`), unfolded.
    pub diagnostic: Option<String>,
    /// The server that gave that reply (`Remote-MTA` without `dns;`).
    pub remote_mta: Option<String>,
    /// Why it failed, per the classifier.
    pub category: Category,
    /// Whether the address should be suppressed (only failures and complaints are hard).
    pub hard: bool,
}

impl BounceReport {
    fn empty() -> BounceReport {
        BounceReport {
            kind: ReportKind::NotABounce,
            recipients: Vec::new(),
            to_addresses: Vec::new(),
            original_message_id: None,
            original_headers: Vec::new(),
            feedback_type: None,
        }
    }
}

/// The parts of a message that matter to bounce parsing.
#[derive(Default)]
struct Sections {
    delivery_status: Option<String>,
    feedback_report: Option<String>,
    original: Option<Fields>,
    body: String,
}

/// Parses one raw message into a [`BounceReport`]. Never panics and never fails: input that
/// is not a recognisable bounce or complaint gives [`ReportKind::NotABounce`].
pub fn parse_message(bytes: &[u8], classifier: &Classifier) -> BounceReport {
    // mail-parser has a `debug_assert!` that some malformed multipart bodies trip (found by
    // fuzzing; release builds carry on): such a message is unreadable, not a crash.
    let parsed = std::panic::catch_unwind(|| PARSER.parse(bytes));
    let Some(message) = parsed.ok().flatten() else {
        return BounceReport::empty();
    };
    let report = parse_parsed(&message, classifier);
    if !report.recipients.is_empty() || !says_delivery_status(&message) {
        return report;
    }
    // A notice that calls itself a delivery report but only forwards one (Exchange wraps
    // the real DSN in a message/rfc822 part): the wrapped one, read once, no deeper.
    let wrapped = message.parts.iter().find_map(|part| match &part.body {
        PartType::Message(nested) => Some(nested),
        _ => None,
    });
    match wrapped.map(|inner| parse_parsed(inner, classifier)) {
        Some(mut inner) if !inner.recipients.is_empty() => {
            inner.to_addresses = report.to_addresses;
            inner
        }
        _ => report,
    }
}

/// Whether the top-level Content-Type says `report-type=delivery-status`.
fn says_delivery_status(message: &mail_parser::Message<'_>) -> bool {
    message
        .content_type()
        .and_then(|ct| ct.attribute("report-type"))
        .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
}

/// [`parse_message`] on a message already parsed.
fn parse_parsed(message: &mail_parser::Message<'_>, classifier: &Classifier) -> BounceReport {
    let mut report = BounceReport::empty();
    report.to_addresses = delivered_to(message);
    let sections = sections(message);
    if let Some(original) = &sections.original {
        report.original_message_id = field(original, "message-id").and_then(clean_message_id);
        report.original_headers = attribution_headers(original);
    }
    if let Some(status) = &sections.delivery_status {
        report.recipients = dsn_recipients(status, classifier);
        refine_from_body(&mut report.recipients, &sections.body, classifier);
        let success = |r: &BouncedRecipient| {
            matches!(
                r.action,
                Action::Delivered | Action::Relayed | Action::Expanded
            )
        };
        if !report.recipients.is_empty() && report.recipients.iter().all(success) {
            // A success DSN ("Return receipt") is not a bounce; its recipients stay for the
            // record (delivered, relayed), and intake skips it.
            return report;
        }
        if !report.recipients.is_empty() {
            report.kind = ReportKind::Dsn;
            return report;
        }
    }
    if let Some(feedback) = &sections.feedback_report {
        complaint(&mut report, feedback);
        return report;
    }
    let jmrp = sections
        .original
        .as_ref()
        .and_then(|o| field(o, JMRP_RECIPIENT));
    if let Some(address) = jmrp.and_then(normalize_address) {
        report.kind = ReportKind::Complaint;
        report.feedback_type = Some("abuse".to_owned());
        report.recipients = vec![complaint_recipient(address)];
        return report;
    }
    let failed_header = message.header_raw("X-Failed-Recipients");
    let clues = nonstandard::Clues {
        subject: message.subject().unwrap_or_default(),
        from: message.header_raw("From").unwrap_or_default(),
        failed_header,
        body: &sections.body,
        is_report: sections.delivery_status.is_some(),
        has_original: sections.original.is_some(),
    };
    if nonstandard::looks_like_bounce(&clues) {
        nonstandard::read(&mut report, &clues, classifier);
        if sections.delivery_status.is_some() {
            report.kind = ReportKind::Dsn;
        }
    }
    report
}

/// The addresses the bounce was delivered to, in header order, de-duplicated (ignoring
/// case), at most [`MAX_TO_ADDRESSES`].
fn delivered_to(message: &mail_parser::Message<'_>) -> Vec<String> {
    const NAMES: [&str; 4] = ["to", "delivered-to", "x-original-to", "envelope-to"];
    let mut found = Distinct::new(MAX_TO_ADDRESSES);
    for (name, value) in message.headers_raw() {
        if !NAMES.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            continue;
        }
        for (_, address) in scan_addresses(value, 20) {
            if !found.push(address.to_ascii_lowercase(), address) {
                return found.items;
            }
        }
    }
    found.items
}

/// Items collected in order without repeats (by key), up to a cap: one hash lookup per item,
/// so collecting is linear in what is offered.
pub(super) struct Distinct<T> {
    seen: HashSet<String>,
    /// The items kept, in the order first offered.
    pub(super) items: Vec<T>,
    cap: usize,
}

impl<T> Distinct<T> {
    /// An empty collection that keeps at most `cap` items.
    pub(super) fn new(cap: usize) -> Self {
        Distinct {
            seen: HashSet::new(),
            items: Vec::new(),
            cap,
        }
    }

    /// Keeps `item` unless its key was seen; false once the cap is reached (stop offering).
    pub(super) fn push(&mut self, key: String, item: T) -> bool {
        if self.items.len() >= self.cap {
            return false;
        }
        if self.seen.insert(key) {
            self.items.push(item);
        }
        self.items.len() < self.cap
    }

    /// Whether an item with this key was kept.
    pub(super) fn contains(&self, key: &str) -> bool {
        self.seen.contains(key)
    }
}

/// Sorts the message's parts into report sections, returned original and readable body.
fn sections(message: &mail_parser::Message<'_>) -> Sections {
    let mut out = Sections::default();
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let ctype = ct.ctype().to_ascii_lowercase();
        let subtype = ct.subtype().unwrap_or_default().to_ascii_lowercase();
        let contents = || String::from_utf8_lossy(part.contents()).into_owned();
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                out.delivery_status.get_or_insert_with(contents);
            }
            ("message", "feedback-report") => {
                out.feedback_report.get_or_insert_with(contents);
            }
            ("message", "rfc822" | "global") | (_, "rfc822-headers" | "global-headers") => {
                out.original.get_or_insert_with(|| original_fields(part));
            }
            _ => {}
        }
    }
    for index in 0..message.text_body_count() {
        let is_headers = message
            .text_part(index as u32)
            .and_then(|p| p.content_type())
            .is_some_and(|ct| ct.subtype().is_some_and(|s| s.contains("headers")));
        if is_headers || out.body.len() >= MAX_BODY_TEXT {
            continue;
        }
        if let Some(text) = message.body_text(index) {
            out.body
                .push_str(text::truncate(&text, MAX_BODY_TEXT - out.body.len()));
            out.body.push('\n');
        }
    }
    if out.body.trim().is_empty() && out.delivery_status.is_none() {
        // A multipart whose boundary could not be read (a header folded without leading
        // blanks) leaves no text part: the raw body is the next best.
        let raw = message.raw_message();
        let start = usize::try_from(message.root_part().offset_body).unwrap_or(raw.len());
        let body = String::from_utf8_lossy(raw.get(start..).unwrap_or_default());
        out.body = text::truncate(&body, MAX_BODY_TEXT).to_string();
    }
    out
}

/// The header block of a returned message, whether mail-parser nested it or kept it as text.
fn original_fields(part: &mail_parser::MessagePart<'_>) -> Fields {
    match &part.body {
        PartType::Message(nested) => header_block(&String::from_utf8_lossy(nested.raw_message())),
        _ => header_block(&String::from_utf8_lossy(part.contents())),
    }
}

/// A Message-ID without `<>` and surrounding space; `None` when empty.
fn clean_message_id(raw: &str) -> Option<String> {
    let id = raw
        .split_whitespace()
        .next()?
        .trim_start_matches('<')
        .trim_end_matches('>');
    (!id.is_empty()).then(|| id.to_string())
}

/// The returned headers kept for attribution.
fn attribution_headers(fields: &Fields) -> Vec<(String, String)> {
    const KEEP: [&str; 5] = ["feedback-id", "return-path", "from", "to", "subject"];
    fields
        .iter()
        .filter(|(name, _)| KEEP.contains(&name.as_str()) || name.starts_with("x-volley-"))
        .take(32)
        .cloned()
        .collect()
}

/// One recipient per per-recipient block of a `message/delivery-status` body; a recipient
/// (final and original address) named again in a later block is taken once, the first time.
fn dsn_recipients(status: &str, classifier: &Classifier) -> Vec<BouncedRecipient> {
    let mut found = Distinct::new(MAX_RECIPIENTS);
    for block in field_blocks_up_to(status, MAX_DSN_BLOCKS) {
        let Some(recipient) = dsn_recipient(&block, classifier) else {
            continue;
        };
        let key = format!(
            "{}\n{}",
            recipient.address,
            recipient.original_recipient.as_deref().unwrap_or_default()
        );
        if !found.push(key, recipient) {
            break;
        }
    }
    found.items
}

fn dsn_recipient(block: &Fields, classifier: &Classifier) -> Option<BouncedRecipient> {
    let original_recipient =
        field(block, "original-recipient").and_then(|v| normalize_address(text::strip_type(v)));
    let address = field(block, "final-recipient")
        .and_then(|v| normalize_address(text::strip_type(v)))
        .or_else(|| original_recipient.clone())?;
    let status = field(block, "status").and_then(text::parse_status);
    let diagnostic = field(block, "diagnostic-code")
        .map(|v| text::strip_type(v).to_string())
        .filter(|d| !d.is_empty());
    let remote_mta = field(block, "remote-mta")
        .map(|v| text::strip_type(v).to_string())
        .filter(|m| !m.is_empty());
    let action = match field(block, "action").map(|a| a.trim().to_ascii_lowercase()) {
        Some(a) if a.starts_with("failed") => Action::Failed,
        Some(a) if a.starts_with("delayed") => Action::Delayed,
        Some(a) if a.starts_with("delivered") => Action::Delivered,
        Some(a) if a.starts_with("relayed") => Action::Relayed,
        Some(a) if a.starts_with("expanded") => Action::Expanded,
        _ => action_from_status(status.as_deref()),
    };
    let found = diagnostic.as_deref().and_then(text::find_code);
    let code = found.as_ref().and_then(|f| f.code);
    let enhanced = status.clone().or_else(|| found.and_then(|f| f.enhanced));
    let (category, hard) = classify(
        classifier,
        action,
        code,
        enhanced.as_deref(),
        diagnostic.as_deref(),
    );
    Some(BouncedRecipient {
        address,
        original_recipient,
        action,
        status,
        diagnostic,
        remote_mta,
        category,
        hard,
    })
}

/// The most report recipients without a `Diagnostic-Code` looked up in the readable text.
const MAX_REFINED: usize = 50;

/// Recipients whose report gives no `Diagnostic-Code` (often with a bare `Status: 5.0.0`)
/// are classified again from the human-readable part's words by their address, when it
/// names them ("<a@b>: Domain does not exist").
fn refine_from_body(recipients: &mut [BouncedRecipient], body: &str, classifier: &Classifier) {
    let bare = |r: &BouncedRecipient| r.diagnostic.is_none() && r.action != Action::Delivered;
    if body.is_empty() || !recipients.iter().any(bare) {
        return;
    }
    // ASCII lowercasing keeps byte offsets, so a match in `lower` is a char boundary in `body`.
    let lower = body.to_ascii_lowercase();
    for recipient in recipients.iter_mut().filter(|r| bare(r)).take(MAX_REFINED) {
        let Some(at) = lower.find(&recipient.address.to_ascii_lowercase()) else {
            continue;
        };
        let span = text::truncate(&body[at..], 600);
        let Some(words) = nonstandard::span_text(span, &recipient.address) else {
            continue;
        };
        let found = text::find_code(&words);
        let code = found.as_ref().and_then(|f| f.code);
        let enhanced = recipient
            .status
            .clone()
            .or_else(|| found.and_then(|f| f.enhanced));
        let (category, hard) = classify(
            classifier,
            recipient.action,
            code,
            enhanced.as_deref(),
            Some(&words),
        );
        recipient.category = category;
        recipient.hard = hard;
        recipient.diagnostic = Some(words);
    }
}

/// The action a report without a usable `Action:` field implies by its status class.
fn action_from_status(status: Option<&str>) -> Action {
    match status.and_then(|s| s.chars().next()) {
        Some('4') => Action::Delayed,
        Some('2') => Action::Delivered,
        _ => Action::Failed,
    }
}

/// Classifies one recipient's failure. Only failures can be hard; a failure with no code at
/// all is classified as the generic `5.0.0` (a delay as `4.0.0`).
pub(super) fn classify(
    classifier: &Classifier,
    action: Action,
    code: Option<u16>,
    enhanced: Option<&str>,
    text: Option<&str>,
) -> (Category, bool) {
    let fallback = match action {
        Action::Delayed => "4.0.0",
        _ => "5.0.0",
    };
    let enhanced = if code.is_none() && enhanced.is_none() {
        Some(fallback)
    } else {
        enhanced
    };
    let c = classifier.classify(code, enhanced, text.unwrap_or_default());
    (c.category, c.hard && action == Action::Failed)
}

/// Fills a complaint from a `message/feedback-report` body.
fn complaint(report: &mut BounceReport, feedback: &str) {
    report.kind = ReportKind::Complaint;
    let fields: Fields = field_blocks(feedback).into_iter().flatten().collect();
    report.feedback_type = field(&fields, "feedback-type").map(|t| t.trim().to_ascii_lowercase());
    let mut found = Distinct::new(MAX_RECIPIENTS);
    for (name, value) in &fields {
        if name == "original-rcpt-to" || name == "removal-recipient" {
            if let Some(a) = normalize_address(text::strip_type(value)) {
                if !found.push(a.clone(), a) {
                    break;
                }
            }
        }
    }
    let mut addresses = found.items;
    if addresses.is_empty() {
        // Many providers redact Original-Rcpt-To; the returned message's To is the next best.
        let to = report.original_headers.iter().find(|(n, _)| n == "to");
        addresses = to
            .map(|(_, v)| scan_addresses(v, 20).into_iter().map(|(_, a)| a).collect())
            .unwrap_or_default();
    }
    report.recipients = addresses
        .into_iter()
        .take(MAX_RECIPIENTS)
        .map(complaint_recipient)
        .collect();
}

/// A recipient who complained: suppressed like a hard bounce.
fn complaint_recipient(address: String) -> BouncedRecipient {
    BouncedRecipient {
        address,
        original_recipient: None,
        action: Action::Complaint,
        status: None,
        diagnostic: None,
        remote_mta: None,
        category: Category::Other,
        hard: true,
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_scale;
