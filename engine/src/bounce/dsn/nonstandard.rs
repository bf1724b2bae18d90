//! Best-effort reading of bounces that carry no RFC 3464 report: qmail, Exim without DSN,
//! old Sendmail and Exchange text, and anything with an `X-Failed-Recipients` header or a
//! tell-tale subject. Addresses come from `X-Failed-Recipients` or from the failure text
//! (the body before the copy of the original), codes from the text near each address.

use std::collections::{HashMap, HashSet};

use super::text::{find_code, header_block, scan_addresses, truncate, FoundCode};
use super::{
    attribution_headers, classify, clean_message_id, Action, BounceReport, BouncedRecipient,
    Distinct, ReportKind, MAX_RECIPIENTS,
};
use crate::bounce::classify::Classifier;
use crate::model::Category;

/// Subjects bounces are sent with (lowercase, matched as substrings).
const SUBJECTS: [&str; 25] = [
    "undelivered mail returned to sender",
    "mail delivery failed",
    "delivery status notification",
    "undeliverable",
    "undelivered mail",
    "failure notice",
    "returned mail",
    "delivery failure",
    "non-delivery",
    "nondeliverable",
    "could not be delivered",
    "delivery has failed",
    "mail delivery delayed",
    "delayed mail",
    "warning: could not send message",
    "mail system error",
    "delivery problem",
    "mail failed",
    "failed mail",
    "has not yet been delivered",
    "delivery warning",
    "automatically rejected",
    "user unknown",
    "bounce notification",
    "non remis",
];

/// Phrases that only bounces contain (lowercase).
const BODY_MARKERS: [&str; 19] = [
    "this is the qmail-send program",
    "this message was created automatically by mail delivery software",
    "the following addresses had permanent fatal errors",
    "delivery has failed to these recipients",
    "did not reach the following recipient",
    "could not be delivered to one or more",
    "this is the mail system at host",
    "delivery to the following recipient failed permanently",
    "i'm afraid i wasn't able to deliver",
    "i'm sorry to have to inform you that your message could not",
    "this is the postfix program at host",
    "your message could not be delivered to",
    "your mail cannot be delivered to",
    "could not be delivered to the following",
    "was automatically rejected",
    "failed addresses follow",
    "unable to deliver message to the following",
    "error: invalid user address",
    "\"notificationtype\":\"bounce\"", // Amazon SES through SNS, as JSON
];

/// Lines after which the original message is quoted (lowercase).
const COPY_MARKERS: [&str; 8] = [
    "below this line is a copy of the message",
    "this is a copy of the message",
    "original message follows",
    "original message headers",
    "unsent message below",
    "the header of the original message is following",
    "returned message follows",
    "------ received: ",
];

/// Words saying delivery is still being attempted (lowercase).
const DELAY_MARKERS: [&str; 6] = [
    "delayed",
    "will continue trying",
    "will continue to try",
    "has not yet been delivered",
    "will be retried",
    "still trying",
];

/// What the message offers for non-standard reading.
pub(super) struct Clues<'a> {
    pub(super) subject: &'a str,
    pub(super) from: &'a str,
    pub(super) failed_header: Option<&'a str>,
    pub(super) body: &'a str,
    pub(super) is_report: bool,
    /// Whether the message returns a copy of an original (`message/rfc822`).
    pub(super) has_original: bool,
}

/// Words a system sender's notice carries (lowercase).
const FAILURE_WORDS: [&str; 6] = [
    "deliver", "failed", "failure", "rejected", "error", "returned",
];

/// Whether the message looks like a bounce at all.
pub(super) fn looks_like_bounce(clues: &Clues<'_>) -> bool {
    if clues.failed_header.is_some() || clues.is_report {
        return true;
    }
    let subject = clues.subject.to_ascii_lowercase();
    if SUBJECTS.iter().any(|s| subject.contains(s)) {
        return true;
    }
    let body = truncate(clues.body, 16 * 1024).to_ascii_lowercase();
    if BODY_MARKERS.iter().any(|m| body.contains(m)) {
        return true;
    }
    let from = clues.from.to_ascii_lowercase();
    let system = ["mailer-daemon@", "postmaster@", "post_master@", "mdaemon@"]
        .iter()
        .any(|s| from.contains(s));
    system
        && (clues.has_original
            || find_code(&body).is_some()
            || FAILURE_WORDS
                .iter()
                .any(|w| subject.contains(w) || body.contains(w)))
}

/// Fills `report` from a non-standard bounce.
pub(super) fn read(report: &mut BounceReport, clues: &Clues<'_>, classifier: &Classifier) {
    report.kind = ReportKind::NonStandard;
    let lower = clues.body.to_ascii_lowercase();
    let cut = COPY_MARKERS
        .iter()
        .filter_map(|m| lower.find(m))
        .min()
        .unwrap_or(lower.len());
    let failure = &clues.body[..cut];
    if cut < clues.body.len() && report.original_headers.is_empty() {
        let after = &clues.body[cut..];
        let quoted = after
            .find('\n')
            .map_or("", |nl| after[nl + 1..].trim_start_matches(['\r', '\n']));
        report.original_headers = attribution_headers(&header_block(quoted));
    }
    if report.original_message_id.is_none() {
        report.original_message_id = quoted_message_id(clues.body, &lower);
    }
    let delayed = DELAY_MARKERS.iter().any(|m| lower[..cut].contains(m));
    let action = if delayed {
        Action::Delayed
    } else {
        Action::Failed
    };
    let addresses = failed_addresses(report, clues, failure);
    let fallback = find_code(failure);
    let fallback = fallback.as_ref().map(|found| (failure, found));
    report.recipients = addresses
        .iter()
        .map(|(start, end, address)| {
            // From the start of the address's line: "Invalid final delivery userid: a@b".
            let line = failure[..*start].rfind('\n').map_or(0, |nl| nl + 1);
            recipient(address, &failure[line..*end], fallback, action, classifier)
        })
        .collect();
}

/// The failed addresses, each with the span of failure text that concerns it. Linear in
/// the text: addresses are looked up in hash sets, spans found by binary search.
fn failed_addresses(
    report: &BounceReport,
    clues: &Clues<'_>,
    failure: &str,
) -> Vec<(usize, usize, String)> {
    let mut exclude: HashSet<String> = report
        .to_addresses
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    let add = |set: &mut HashSet<String>, text: &str| {
        for (_, a) in scan_addresses(text, 5) {
            set.insert(a.to_ascii_lowercase());
        }
    };
    add(&mut exclude, clues.from);
    // The returned message's sender is rarely the failed address, but people do write to
    // themselves: excluded only while another candidate remains.
    let mut strict = exclude.clone();
    for (name, value) in &report.original_headers {
        if name == "from" || name == "return-path" {
            add(&mut strict, value);
        }
    }
    let in_text = scan_addresses(failure, MAX_RECIPIENTS * 4);
    // Where each address first appears in the failure text.
    let mut first_in_text: HashMap<String, usize> = HashMap::new();
    for (start, address) in &in_text {
        first_in_text
            .entry(address.to_ascii_lowercase())
            .or_insert(*start);
    }
    let wanted: Vec<String> = match clues.failed_header {
        Some(header) => scan_addresses(header, MAX_RECIPIENTS * 4)
            .into_iter()
            .map(|(_, a)| a)
            .collect(),
        None => in_text.into_iter().map(|(_, a)| a).collect(),
    };
    let pick = |exclude| pick_failed(&wanted, exclude, &first_in_text, failure.len());
    let mut firsts = pick(&strict);
    if firsts.items.is_empty() {
        firsts = pick(&exclude);
    }
    let mut starts: Vec<usize> = firsts.items.iter().map(|(s, _)| *s).collect();
    starts.sort_unstable();
    firsts
        .items
        .into_iter()
        .map(|(start, address)| {
            let next = starts.partition_point(|s| *s <= start);
            let end = starts.get(next).copied().unwrap_or(failure.len());
            (start, end, address)
        })
        .collect()
}

/// The `wanted` addresses that are neither excluded nor system mailboxes, once each, with
/// where each first appears in the failure text (`failure_len` when it does not).
fn pick_failed(
    wanted: &[String],
    exclude: &HashSet<String>,
    first_in_text: &HashMap<String, usize>,
    failure_len: usize,
) -> Distinct<(usize, String)> {
    let mut firsts = Distinct::new(MAX_RECIPIENTS);
    for address in wanted {
        let lower = address.to_ascii_lowercase();
        let local = lower.split('@').next().unwrap_or_default();
        let system = matches!(local, "mailer-daemon" | "postmaster" | "root");
        if exclude.contains(&lower) || system || firsts.contains(&lower) {
            continue;
        }
        let start = first_in_text.get(&lower).copied().unwrap_or(failure_len);
        if !firsts.push(lower, (start, address.clone())) {
            break;
        }
    }
    firsts
}

/// One recipient from the failure text near its address (`span`), or else from the first
/// code in the whole failure text (`fallback`, found once for all recipients).
fn recipient(
    address: &str,
    span: &str,
    fallback: Option<(&str, &FoundCode)>,
    action: Action,
    classifier: &Classifier,
) -> BouncedRecipient {
    let near = find_code(span);
    let (source, found) = match &near {
        Some(found) => (span, Some(found)),
        None => match fallback {
            Some((text, found)) => (text, Some(found)),
            None => (span, None),
        },
    };
    let code_line = found.map(|f| {
        let rest = &source[f.start..];
        let line = rest.lines().next().unwrap_or_default().trim();
        truncate(line, 500).to_string()
    });
    // A code found far from the address (a 2xx in a transcript) must not overrule its words.
    let found = found.filter(|f| near.is_some() || failure_class(f));
    let code = found.and_then(|f| f.code);
    let status = found.and_then(|f| f.enhanced.clone());
    let judge = |text: Option<&str>| classify(classifier, action, code, status.as_deref(), text);
    // No code by the address: the words by it (qmail, Yahoo, Exchange) say more than a code
    // elsewhere in the notice, unless they say nothing known.
    let words = match near {
        Some(_) => None,
        None => span_text(span, address),
    };
    let by_words = words.as_deref().map(|w| (judge(Some(w)), w));
    let ((category, hard), diagnostic) = match by_words {
        Some((judged, w)) if judged.0 != Category::Other || code_line.is_none() => {
            (judged, Some(w.to_owned()))
        }
        _ => (judge(code_line.as_deref()), code_line),
    };
    BouncedRecipient {
        address: address.to_string(),
        original_recipient: None,
        action,
        status,
        diagnostic,
        remote_mta: None,
        category,
        hard,
    }
}

/// Whether a code says failure (4xx or 5xx, or an enhanced 4.x.x or 5.x.x).
fn failure_class(found: &FoundCode) -> bool {
    let class = found.code.map(|c| c / 100).or_else(|| {
        let first = found.enhanced.as_ref()?.chars().next()?;
        first.to_digit(10).and_then(|d| u16::try_from(d).ok())
    });
    matches!(class, Some(4 | 5))
}

/// The failure text about one address without the address itself, blanks collapsed, at most
/// 500 bytes; `None` when nothing is left.
pub(super) fn span_text(span: &str, address: &str) -> Option<String> {
    let mut out = String::new();
    for word in truncate(span, 2_000).split_whitespace() {
        let bare = word.trim_matches(|c: char| "<>():;,.[]\"'".contains(c));
        if bare.eq_ignore_ascii_case(address) {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() >= 500 {
            break;
        }
    }
    (out.len() > 3).then(|| truncate(&out, 500).to_string())
}

/// A `Message-ID:` line quoted in the body (the bounce's own Message-ID is a header, so any
/// in the body belongs to the returned original): a line starting, after spaces, tabs and
/// `>` quote marks, with `Message-ID:`. One pass over the lines.
fn quoted_message_id(body: &str, lower: &str) -> Option<String> {
    const NAME: &str = "message-id:";
    let mut line_start = 0;
    for line in lower.split_inclusive('\n') {
        let at = line_start + (line.len() - line.trim_start_matches([' ', '\t', '>']).len());
        line_start += line.len();
        if !lower[at..].starts_with(NAME) {
            continue;
        }
        let rest = &body[at + NAME.len()..];
        let value = rest.lines().next().unwrap_or_default();
        if let Some(id) = clean_message_id(value) {
            return Some(id);
        }
    }
    None
}
