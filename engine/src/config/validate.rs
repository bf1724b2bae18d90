//! Phase two of loading a campaign file: turn the raw TOML into checked [`CampaignSettings`],
//! resolving paths against the campaign file's folder, reading templates, and naming the TOML
//! key of every problem. The relay section is checked in `relay.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::address::{normalize_address, normalize_domain};
use super::error::{ConfigError, DurationProblem};
use super::mx::{validate_dns, validate_mx};
use super::raw::{RawCampaign, RawDkim, RawFile, RawRetry};
use super::relay::validate_relays;
use super::settings::{
    Address, BounceSettings, CampaignSettings, DkimSettings, KeySource, RetrySettings, TemplateFile,
};
use super::shaping::validate_shaping;
use super::timeouts::validate_timeouts;
use super::tracking::validate_tracking;
use crate::store::{is_topic_id, CampaignTopic, UnsubscribeScope, MAX_TOPIC_NAME_CHARS};

/// Where the campaign file is: for error messages and for resolving relative paths.
pub(crate) struct Ctx {
    /// The campaign file as given.
    pub(crate) file: PathBuf,
    /// Its folder (empty for a bare file name, so joins stay relative to the working dir).
    pub(crate) dir: PathBuf,
    /// Whether secrets (passwords, keys) are read; not when the settings only find the store.
    pub(crate) secrets: bool,
    /// The file's text, to turn the byte offsets of spanned keys into line numbers.
    pub(crate) text: String,
}

impl Ctx {
    /// A context for the campaign file at `file`.
    pub(crate) fn new(file: &Path) -> Ctx {
        Ctx {
            file: file.to_path_buf(),
            dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
            secrets: true,
            text: String::new(),
        }
    }

    /// The 1-based line of byte `offset` of the file, when the text is known.
    pub(crate) fn line_of(&self, offset: usize) -> Option<usize> {
        (!self.text.is_empty()).then(|| line_column(&self.text, offset).0)
    }

    /// Resolves a path from the file against the campaign folder; empty is an error.
    pub(crate) fn path(&self, key: &str, value: &str) -> Result<PathBuf, ConfigError> {
        let value = self.non_empty(key, value)?;
        Ok(self.dir.join(value))
    }

    /// Returns `value` trimmed, or an error naming `key` if that leaves nothing.
    pub(crate) fn non_empty<'a>(&self, key: &str, value: &'a str) -> Result<&'a str, ConfigError> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(ConfigError::Empty {
                file: self.file.clone(),
                key: key.to_owned(),
            });
        }
        Ok(trimmed)
    }

    /// A [`ConfigError::BadValue`] for `key`.
    pub(crate) fn bad(&self, key: &str, value: &str, expected: &'static str) -> ConfigError {
        ConfigError::BadValue {
            file: self.file.clone(),
            key: key.to_owned(),
            value: value.to_owned(),
            expected,
        }
    }

    /// Checks `min <= value <= max`.
    pub(crate) fn range(
        &self,
        key: &str,
        value: i64,
        min: i64,
        max: i64,
    ) -> Result<(), ConfigError> {
        if (min..=max).contains(&value) {
            return Ok(());
        }
        Err(ConfigError::OutOfRange {
            file: self.file.clone(),
            key: key.to_owned(),
            value,
            min,
            max,
        })
    }

    /// Checks that a file named by `key` can be opened (its content is read elsewhere).
    pub(crate) fn readable(&self, key: &str, path: &Path) -> Result<(), ConfigError> {
        std::fs::File::open(path)
            .map(drop)
            .map_err(|source| self.file_error(key, path, source))
    }

    /// A [`ConfigError::FileRead`] for `key`.
    pub(crate) fn file_error(&self, key: &str, path: &Path, source: std::io::Error) -> ConfigError {
        ConfigError::FileRead {
            file: self.file.clone(),
            key: key.to_owned(),
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Parses campaign-file text into the raw structs; errors carry the line and column.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|err| {
        let (line, column) = match err.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        let mut message = err.message().trim_end().to_owned();
        if message.contains("duplicate key `relay`") {
            message.push_str(
                ": [relay] (one relay) and [[relay]] (several) cannot be mixed; write every \
                 relay as a [[relay]] entry",
            );
        }
        ConfigError::Syntax {
            file: file.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Checks the raw file (read from `file`, whose `text` gives errors their lines) and builds
/// the settings. `store_override` (the CLI's `--store`) wins over `[store]`'s `path` and `url`.
pub(crate) fn validate(
    raw: RawFile,
    (file, text): (&Path, &str),
    store_override: Option<&Path>,
    secrets: bool,
) -> Result<CampaignSettings, ConfigError> {
    let ctx = Ctx {
        secrets,
        text: text.to_owned(),
        ..Ctx::new(file)
    };
    let c = &raw.campaign;
    let id = check_id(&ctx, &c.id)?;
    let from = parse_mailbox(&ctx, "campaign.from", &c.from)?;
    let reply_to = match &c.reply_to {
        Some(value) => Some(parse_mailbox(&ctx, "campaign.reply_to", value)?),
        None => None,
    };
    let subject = check_subject(&ctx, &c.subject)?;
    let (text, html) = read_templates(&ctx, c)?;
    let recipients = ctx.path("campaign.recipients", &c.recipients)?;
    ctx.readable("campaign.recipients", &recipients)?;
    ctx.range("campaign.priority", c.priority, 1, 5)?;
    let segment = parse_segment(&ctx, c.segment.as_deref())?;
    let priority = u8::try_from(c.priority).unwrap_or(3); // invariant: range-checked above
    let dkim = validate_dkim(&ctx, &raw.dkim)?;
    check_authorised(&ctx, &from, &dkim)?;
    let relays = match &raw.relay {
        Some(relays) => validate_relays(&ctx, relays, &from.domain)?,
        None => Vec::new(),
    };
    let relay = relays.first().cloned();
    let retry = validate_retry(&ctx, &raw.retry)?;
    let bounces = validate_bounces(&ctx, &raw.bounces)?;
    let mx = validate_mx(&ctx, &raw.mx, &from.domain)?;
    let dns = validate_dns(&ctx, &raw.dns)?;
    let timeouts = validate_timeouts(&ctx, &raw.timeouts)?;
    let shaping = validate_shaping(&ctx, &raw.shaping)?;
    let tracking = match &raw.tracking {
        Some(tracking) => Some(validate_tracking(&ctx, tracking)?),
        None => None,
    };
    let store =
        super::store::validate_store(&ctx, &raw.store, store_override, default_store(&ctx))?;
    let (schedule, window) = match &raw.schedule {
        Some(schedule) => super::schedule::validate_schedule(&ctx, schedule, &id)?,
        None => (None, None),
    };
    let variants = super::ab::validate_variants(&ctx, &raw.variants)?;
    let holdout = super::ab::validate_holdout(&ctx, raw.ab.as_ref())?;
    let ab = match &raw.ab {
        Some(ab) => super::ab::validate_ab(&ctx, ab, &variants)?,
        None => None,
    };
    let conversions = super::conversions::validate_conversions(&ctx, &raw.conversions)?;
    let audience = super::audience::validate_audience(&ctx, &raw.audience, &id)?;
    let topic = validate_topic(&ctx, c)?;
    let warmup = match &raw.warmup {
        Some(warmup) => Some(super::warmup::validate_warmup(&ctx, warmup, &from.domain)?),
        None => None,
    };
    Ok(CampaignSettings {
        warmup,
        audience,
        topic,
        conversions,
        variants,
        ab,
        holdout,
        schedule,
        window,
        secrets_read: ctx.secrets,
        file: ctx.file,
        id,
        from,
        reply_to,
        subject,
        text,
        html,
        recipients,
        segment,
        priority,
        archive: archive_settings(&raw.campaign),
        relay,
        relays,
        dkim,
        retry,
        store,
        bounces,
        mx,
        dns,
        timeouts,
        shaping,
        tracking,
    })
}

/// Parses `[campaign] where` (its columns are checked against the list's header later,
/// when the campaign is prepared).
fn parse_segment(ctx: &Ctx, text: Option<&str>) -> Result<Option<super::Segment>, ConfigError> {
    let Some(text) = text else {
        return Ok(None);
    };
    super::Segment::parse(text)
        .map(Some)
        .map_err(|source| ConfigError::Segment {
            file: ctx.file.clone(),
            text: text.to_owned(),
            source: Box::new(source),
        })
}

/// A share between 0 and 1 (exclusive of 0): a fraction, or a percentage such as `"5%"`.
fn parse_share(ctx: &Ctx, key: &str, value: &super::raw::RawShare) -> Result<f64, ConfigError> {
    let expected = "a share such as \"5%\" or 0.05 (more than 0, at most 100 %)";
    let (fraction, shown) = match value {
        super::raw::RawShare::Fraction(f) => (Some(*f), f.to_string()),
        super::raw::RawShare::Text(text) => {
            let number = text.trim().strip_suffix('%').map(str::trim);
            let fraction = number
                .and_then(|n| n.parse::<f64>().ok())
                .map(|percent| percent / 100.0);
            (fraction, text.clone())
        }
    };
    match fraction {
        Some(f) if f > 0.0 && f <= 1.0 && f.is_finite() => Ok(f),
        _ => Err(ctx.bad(key, &shown, expected)),
    }
}

/// Parses `[bounces]`.
fn validate_bounces(
    ctx: &Ctx,
    raw: &super::raw::RawBounces,
) -> Result<BounceSettings, ConfigError> {
    let domain = match &raw.domain {
        Some(domain) => {
            let normal = normalize_domain(domain.trim()).map_err(|_| {
                ctx.bad(
                    "bounces.domain",
                    domain,
                    "a domain name such as bounce.example.com",
                )
            })?;
            Some(normal)
        }
        None => None,
    };
    ctx.range("bounces.soft_limit", raw.soft_limit, 1, 1_000)?;
    let rules_file = match &raw.rules_file {
        Some(path) => {
            let path = ctx.path("bounces.rules_file", path)?;
            ctx.readable("bounces.rules_file", &path)?;
            Some(path)
        }
        None => None,
    };
    let soft_window = parse_duration(ctx, "bounces.soft_window", &raw.soft_window)?;
    // Zero is allowed here (no minimum span), unlike for the other durations.
    let soft_min_span = match raw.soft_min_span.trim() {
        "0" | "0s" | "0d" => Duration::ZERO,
        value => parse_duration(ctx, "bounces.soft_min_span", value)?,
    };
    if soft_min_span > soft_window {
        return Err(ctx.bad(
            "bounces.soft_min_span",
            &raw.soft_min_span,
            "a span no longer than bounces.soft_window",
        ));
    }
    let share = |key: &str, value: &Option<super::raw::RawShare>| match value {
        Some(value) => parse_share(ctx, key, value).map(Some),
        None => Ok(None),
    };
    let min_sample = match raw.rate_min_sample {
        Some(n) => {
            ctx.range("bounces.rate_min_sample", n, 1, 100_000_000)?;
            u64::try_from(n).unwrap_or(500) // invariant: range-checked
        }
        None => super::settings::StopLimits::default().min_sample,
    };
    let stop = super::settings::StopLimits {
        max_bounce_rate: share("bounces.max_bounce_rate", &raw.max_bounce_rate)?,
        max_complaint_rate: share("bounces.max_complaint_rate", &raw.max_complaint_rate)?,
        min_sample,
    };
    Ok(BounceSettings {
        domain,
        soft_limit: u32::try_from(raw.soft_limit).unwrap_or(3), // invariant: range-checked above
        soft_window,
        soft_min_span,
        rules_file,
        stop,
    })
}

/// `<campaign file stem>.volley` beside the campaign file (or the serve file).
pub(crate) fn default_store(ctx: &Ctx) -> PathBuf {
    let stem = ctx
        .file
        .file_stem()
        .map_or_else(|| "campaign".into(), |s| s.to_string_lossy());
    ctx.dir.join(format!("{stem}.volley"))
}

/// `campaign.id`: `[A-Za-z0-9._-]{1,64}`.
fn check_id(ctx: &Ctx, id: &str) -> Result<String, ConfigError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > 64 || !id.chars().all(ok_char) {
        return Err(ctx.bad(
            "campaign.id",
            id,
            "use 1 to 64 of the characters A-Z a-z 0-9 . _ -",
        ));
    }
    Ok(id.to_owned())
}

/// `campaign.topic`, `topic_name` and `unsubscribe`: the campaign's topic, if any.
fn validate_topic(ctx: &Ctx, c: &RawCampaign) -> Result<Option<CampaignTopic>, ConfigError> {
    let scope = match c.unsubscribe.as_deref() {
        None => None,
        Some(text) => Some(
            UnsubscribeScope::parse(text)
                .ok_or_else(|| ctx.bad("campaign.unsubscribe", text, "\"topic\" or \"all\""))?,
        ),
    };
    let Some(topic) = &c.topic else {
        if let Some(name) = &c.topic_name {
            return Err(ctx.bad("campaign.topic_name", name, "campaign.topic set too"));
        }
        if scope == Some(UnsubscribeScope::Topic) {
            return Err(ctx.bad("campaign.unsubscribe", "topic", "campaign.topic set too"));
        }
        return Ok(None);
    };
    if !is_topic_id(topic) {
        return Err(ctx.bad(
            "campaign.topic",
            topic,
            "1 to 64 of the characters a-z 0-9 _ -, starting with a letter or digit",
        ));
    }
    let name = match &c.topic_name {
        Some(name) => {
            let name = ctx.non_empty("campaign.topic_name", name)?;
            if name.len() > MAX_TOPIC_NAME_CHARS || name.chars().any(char::is_control) {
                return Err(ctx.bad("campaign.topic_name", name, "one line of at most 200 bytes"));
            }
            name.to_owned()
        }
        None => topic.clone(),
    };
    Ok(Some(CampaignTopic {
        topic: topic.clone(),
        name,
        unsubscribe: scope.unwrap_or(UnsubscribeScope::Topic),
    }))
}

/// `campaign.subject`: one non-empty line.
fn check_subject(ctx: &Ctx, subject: &str) -> Result<String, ConfigError> {
    ctx.non_empty("campaign.subject", subject)?;
    if subject.contains(['\r', '\n']) {
        return Err(ctx.bad("campaign.subject", subject, "a single line"));
    }
    Ok(subject.to_owned())
}

/// Parses `Name <address>`, `"Name" <address>` or a bare address.
pub(crate) fn parse_mailbox(ctx: &Ctx, key: &str, value: &str) -> Result<Address, ConfigError> {
    let trimmed = value.trim();
    let (name, addr) = match trimmed.strip_suffix('>').and_then(|s| s.rsplit_once('<')) {
        Some((name, addr)) => (Some(name.trim()), addr),
        None => (None, trimmed),
    };
    let name = name.map(|n| {
        n.strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .unwrap_or(n)
            .trim()
    });
    if name.is_some_and(|n| n.chars().any(char::is_control)) {
        return Err(ctx.bad(key, value, "a display name without control characters"));
    }
    let (address, domain) = normalize_address(addr).map_err(|source| ConfigError::BadAddress {
        file: ctx.file.clone(),
        key: key.to_owned(),
        value: value.to_owned(),
        source,
    })?;
    Ok(Address {
        name: name.filter(|n| !n.is_empty()).map(str::to_owned),
        address,
        domain,
    })
}

/// Reads `campaign.text` and `campaign.html`; at least one must be set.
fn read_templates(
    ctx: &Ctx,
    c: &RawCampaign,
) -> Result<(Option<TemplateFile>, Option<TemplateFile>), ConfigError> {
    if c.text.is_none() && c.html.is_none() {
        return Err(ConfigError::Missing {
            file: ctx.file.clone(),
            key: "campaign.text or campaign.html".to_owned(),
            why: "a campaign needs a text or an HTML body template",
        });
    }
    let read = |key: &str, value: &Option<String>| -> Result<Option<TemplateFile>, ConfigError> {
        let Some(value) = value else { return Ok(None) };
        let path = ctx.path(key, value)?;
        let source = std::fs::read_to_string(&path).map_err(|e| ctx.file_error(key, &path, e))?;
        Ok(Some(TemplateFile { path, source }))
    };
    Ok((
        read("campaign.text", &c.text)?,
        read("campaign.html", &c.html)?,
    ))
}

/// Checks every `[[dkim]]` entry and that no (domain, selector) pair repeats.
fn validate_dkim(ctx: &Ctx, entries: &[RawDkim]) -> Result<Vec<DkimSettings>, ConfigError> {
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let dkim = validate_dkim_entry(ctx, i, entry)?;
        let pair = (dkim.domain.clone(), dkim.selector.clone());
        if let Some(first) = seen.get(&pair) {
            return Err(ConfigError::DuplicateDkim {
                file: ctx.file.clone(),
                key: format!("dkim[{i}]"),
                first: format!("dkim[{first}]"),
                domain: dkim.domain,
                selector: dkim.selector,
            });
        }
        seen.insert(pair, i);
        out.push(dkim);
    }
    Ok(out)
}

/// Checks one `[[dkim]]` entry (index `i`).
fn validate_dkim_entry(ctx: &Ctx, i: usize, entry: &RawDkim) -> Result<DkimSettings, ConfigError> {
    let key = |field: &str| format!("dkim[{i}].{field}");
    let domain_value = ctx.non_empty(&key("domain"), &entry.domain)?;
    let domain = normalize_domain(domain_value).map_err(|source| ConfigError::BadAddress {
        file: ctx.file.clone(),
        key: key("domain"),
        value: entry.domain.clone(),
        source,
    })?;
    let selector = ctx.non_empty(&key("selector"), &entry.selector)?;
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !selector.split('.').all(label_ok) {
        return Err(ctx.bad(
            &key("selector"),
            selector,
            "DNS labels like s1 or mail-2024",
        ));
    }
    let key_source = match (&entry.key_file, &entry.key_env) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Conflict {
                file: ctx.file.clone(),
                key: key("key_file"),
                other: key("key_env"),
            })
        }
        (Some(path), None) => KeySource::File(ctx.path(&key("key_file"), path)?),
        (None, Some(var)) => KeySource::Env(ctx.non_empty(&key("key_env"), var)?.to_owned()),
        (None, None) => {
            return Err(ConfigError::Missing {
                file: ctx.file.clone(),
                key: format!("{} or {}", key("key_file"), key("key_env")),
                why: "a DKIM entry needs its private key",
            })
        }
    };
    Ok(DkimSettings {
        domain,
        selector: selector.to_owned(),
        key: key_source,
    })
}

/// The From domain must be one of the `[[dkim]]` domains.
fn check_authorised(ctx: &Ctx, from: &Address, dkim: &[DkimSettings]) -> Result<(), ConfigError> {
    if dkim.iter().any(|d| d.domain == from.domain) {
        return Ok(());
    }
    let mut configured: Vec<String> = Vec::new();
    for d in dkim {
        if !configured.contains(&d.domain) {
            configured.push(d.domain.clone());
        }
    }
    Err(ConfigError::UnauthorisedSender {
        file: ctx.file.clone(),
        domain: from.domain.clone(),
        configured,
    })
}

/// Parses `[retry]`: a non-empty schedule of positive durations and a positive expiry.
fn validate_retry(ctx: &Ctx, raw: &RawRetry) -> Result<RetrySettings, ConfigError> {
    if raw.schedule.is_empty() {
        return Err(duration_error(
            ctx,
            "retry.schedule",
            "[]",
            DurationProblem::EmptyList,
        ));
    }
    let mut schedule = Vec::with_capacity(raw.schedule.len());
    for (i, value) in raw.schedule.iter().enumerate() {
        schedule.push(parse_duration(ctx, &format!("retry.schedule[{i}]"), value)?);
    }
    let expire_after = parse_duration(ctx, "retry.expire_after", &raw.expire_after)?;
    if !(0.0..=0.5).contains(&raw.jitter) {
        return Err(ConfigError::BadValue {
            file: ctx.file.clone(),
            key: "retry.jitter".to_owned(),
            value: raw.jitter.to_string(),
            expected: "a fraction from 0 to 0.5 (0.1 spreads each wait by ±10 %)",
        });
    }
    Ok(RetrySettings {
        schedule,
        expire_after,
        jitter: raw.jitter,
    })
}

/// Parses one positive humantime duration.
pub(crate) fn parse_duration(ctx: &Ctx, key: &str, value: &str) -> Result<Duration, ConfigError> {
    let duration = humantime::parse_duration(value.trim())
        .map_err(|e| duration_error(ctx, key, value, DurationProblem::Syntax(e)))?;
    if duration.is_zero() {
        return Err(duration_error(ctx, key, value, DurationProblem::Zero));
    }
    Ok(duration)
}

/// A [`ConfigError::BadDuration`].
fn duration_error(ctx: &Ctx, key: &str, value: &str, reason: DurationProblem) -> ConfigError {
    ConfigError::BadDuration {
        file: ctx.file.clone(),
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    }
}

/// `[campaign] archive` and `archive_fields`: the archive page's field values, when it has one.
fn archive_settings(campaign: &super::raw::RawCampaign) -> Option<Vec<(String, String)>> {
    campaign.archive.then(|| {
        campaign
            .archive_fields
            .iter()
            .map(|(field, value)| (field.clone(), value.clone()))
            .collect()
    })
}
