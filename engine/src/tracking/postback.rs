//! Conversion postbacks: a shop's server tells the tracking server about an order.
//!
//! `POST /conversions/<campaign>` with a JSON body
//! `{"email": "…", "order_id": "…", "value": "12.50", "currency": "EUR", "time": "RFC 3339"}`
//! (`currency` and `time` optional; `value` a string or a number) and the header
//! `X-Volley-Signature: sha256=<hex>`, the lowercase hex HMAC-SHA256 of the exact body bytes
//! under the campaign's `[conversions] postback_secret`. Answers: 200 with
//! `{"recorded": "added"|"duplicate", "attributed": bool}`; 409 when the order id was recorded
//! with other details (the first is kept); 400 naming the field; 401 for a missing or wrong
//! signature or a campaign without postbacks (the same answer, so campaigns cannot be
//! probed); 413 past the body limit; 429 past the rate limit; 503 when the store failed.
//! Bodies are bounded (the tracking server's `max_body_bytes`, read within its header
//! timeout) and so is the rate (postbacks per second, all campaigns together).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::model::Millis;
use crate::store::conversions::{parse_time, parse_value, untimed_repeat, Attributor, NO_CURRENCY};
use crate::store::{Attribution, Conversion, Recorded, Store, StoreError};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-volley-signature";

/// Postbacks accepted per second, all campaigns together, by default.
pub const DEFAULT_POSTBACKS_PER_SECOND: u32 = 200;

/// How long a campaign's delivered recipients are reused for attribution before being read
/// again.
const ATTRIBUTOR_TTL: Duration = Duration::from_secs(30);

/// The campaigns that accept postbacks, with their keys; shared with whoever loads the
/// campaigns (`volley serve` registers each campaign it reads).
#[derive(Clone, Default)]
pub struct Postbacks {
    campaigns: Arc<RwLock<HashMap<String, Arc<Campaign>>>>,
}

impl std::fmt::Debug for Postbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postbacks").finish_non_exhaustive()
    }
}

struct Campaign {
    key: hmac::Key,
    window: Duration,
    currency: Option<String>,
    attributor: Mutex<Option<(Instant, Arc<Attributor>)>>,
}

impl Postbacks {
    /// Accepts postbacks for `campaign` signed with `secret`, attributed within `window`, in
    /// `currency` when set (else the currency of its first order). Registering again
    /// replaces the entry (a new secret takes effect at once).
    pub fn register(
        &self,
        campaign: &str,
        secret: &[u8],
        window: Duration,
        currency: Option<&str>,
    ) {
        let entry = Arc::new(Campaign {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            window,
            currency: currency.map(str::to_owned),
            attributor: Mutex::new(None),
        });
        if let Ok(mut campaigns) = self.campaigns.write() {
            campaigns.insert(campaign.to_owned(), entry);
        }
    }

    /// Stops accepting postbacks for `campaign`.
    pub fn forget(&self, campaign: &str) {
        if let Ok(mut campaigns) = self.campaigns.write() {
            campaigns.remove(campaign);
        }
    }

    fn get(&self, campaign: &str) -> Option<Arc<Campaign>> {
        self.campaigns.read().ok()?.get(campaign).cloned()
    }
}

/// At most `per_second` postbacks in each wall-clock second.
#[derive(Debug)]
pub(crate) struct RateLimit {
    per_second: u32,
    window: Mutex<(u64, u32)>,
}

impl RateLimit {
    pub(crate) fn new(per_second: u32) -> Self {
        RateLimit {
            per_second,
            window: Mutex::new((0, 0)),
        }
    }

    /// True when one more postback fits in the current second.
    pub(crate) fn allow(&self, now: Millis) -> bool {
        let second = now / 1000;
        let Ok(mut window) = self.window.lock() else {
            return false;
        };
        if window.0 != second {
            *window = (second, 0);
        }
        window.1 += 1;
        window.1 <= self.per_second
    }
}

/// The body as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    email: String,
    order_id: String,
    value: Amount,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    time: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Amount {
    Text(String),
    Number(serde_json::Number),
}

/// An answer: status and JSON body.
pub(crate) type Answer = (StatusCode, String);

fn answer(status: StatusCode, json: serde_json::Value) -> Answer {
    (status, format!("{json}\n"))
}

fn bad(field: &str, why: &str) -> Answer {
    answer(
        StatusCode::BAD_REQUEST,
        serde_json::json!({ "error": why, "field": field }),
    )
}

/// Checks the signature of `body` for `campaign`; the campaign's entry when it verifies.
fn verify(
    postbacks: &Postbacks,
    campaign: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Option<Arc<Campaign>> {
    let entry = postbacks.get(campaign)?;
    let hex = signature?.trim().strip_prefix("sha256=")?;
    let tag = data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .ok()?;
    hmac::verify(&entry.key, body, &tag).ok()?;
    Some(entry)
}

/// Handles one postback whose body was read within the limits.
pub(crate) async fn handle(
    store: &Store,
    postbacks: &Postbacks,
    campaign: &str,
    signature: Option<&str>,
    body: &[u8],
    now: Millis,
) -> Answer {
    let Some(entry) = verify(postbacks, campaign, signature, body) else {
        let refused = serde_json::json!({ "error": "bad signature" });
        return answer(StatusCode::UNAUTHORIZED, refused);
    };
    let (order, timed) = match parse(&entry, body, now) {
        Ok(order) => order,
        Err(answer) => return answer,
    };
    let store = store.clone();
    let campaign = campaign.to_owned();
    let recorded =
        tokio::task::spawn_blocking(move || record(&store, &campaign, &entry, order, timed)).await;
    let try_again = || {
        let json = serde_json::json!({ "error": "try again" });
        answer(StatusCode::SERVICE_UNAVAILABLE, json)
    };
    match recorded {
        Ok(Ok(Ok((effect, attribution)))) => {
            let attributed = attribution != Attribution::Unattributed;
            let (status, recorded) = match effect {
                Recorded::Added => (StatusCode::OK, "added"),
                Recorded::Duplicate => (StatusCode::OK, "duplicate"),
                Recorded::Changed { .. } => (StatusCode::CONFLICT, "changed"),
            };
            let json = serde_json::json!({ "recorded": recorded, "attributed": attributed });
            answer(status, json)
        }
        Ok(Ok(Err(currency))) => bad(
            "currency",
            &format!("the campaign's orders are in {currency}"),
        ),
        Ok(Err(error)) => {
            tracing::warn!(%error, "a conversion postback could not be recorded");
            try_again()
        }
        Err(_) => try_again(),
    }
}

/// Attributes and records one order, durably; `Ok(Err(currency))` when the campaign's
/// orders are in another currency.
fn record(
    store: &Store,
    campaign: &str,
    entry: &Campaign,
    order: Conversion,
    timed: bool,
) -> Result<Result<(Recorded, Attribution), String>, StoreError> {
    let attributor = attributor(store, campaign, entry)?;
    let mut order = Conversion {
        attribution: attributor.attribute(&order.email, order.at),
        ..order
    };
    let first = store
        .conversions(campaign)?
        .into_iter()
        .next()
        .map(|c| c.currency);
    if order.currency.is_empty() {
        order.currency = first.clone().unwrap_or_else(|| NO_CURRENCY.to_owned());
    }
    if let Some(first) = first.filter(|first| *first != order.currency) {
        return Ok(Err(first));
    }
    let effect = store
        .record_conversions(campaign, std::slice::from_ref(&order))?
        .into_iter()
        .next()
        .unwrap_or(Recorded::Duplicate);
    store.flush_blocking()?;
    Ok(Ok((
        untimed_repeat(effect, &order, timed),
        order.attribution,
    )))
}

/// The campaign's attributor, read again when older than [`ATTRIBUTOR_TTL`].
fn attributor(
    store: &Store,
    campaign: &str,
    entry: &Campaign,
) -> Result<Arc<Attributor>, crate::store::StoreError> {
    if let Ok(cached) = entry.attributor.lock() {
        if let Some((at, attributor)) = cached.as_ref() {
            if at.elapsed() < ATTRIBUTOR_TTL {
                return Ok(attributor.clone());
            }
        }
    }
    let fresh = Arc::new(Attributor::read(store, campaign, entry.window)?);
    if let Ok(mut cached) = entry.attributor.lock() {
        *cached = Some((Instant::now(), fresh.clone()));
    }
    Ok(fresh)
}

/// The body as an order (not yet attributed), or a 400 naming the field.
fn parse(entry: &Campaign, body: &[u8], now: Millis) -> Result<(Conversion, bool), Answer> {
    let body: Body = serde_json::from_slice(body)
        .map_err(|e| bad("body", &format!("not the JSON expected: {e}")))?;
    let email = crate::config::normalize_address(&body.email)
        .map_err(|e| bad("email", &e.to_string()))?
        .0;
    let order_id = body.order_id;
    if order_id.is_empty() || order_id.len() > 200 || order_id.chars().any(char::is_control) {
        return Err(bad(
            "order_id",
            "1 to 200 characters, no control characters",
        ));
    }
    let value = match &body.value {
        Amount::Text(text) => text.clone(),
        Amount::Number(number) => number.to_string(),
    };
    let value_micros = parse_value(&value).map_err(|why| bad("value", &why))?;
    let at = match &body.time {
        Some(text) => parse_time(text).map_err(|why| bad("time", &why))?,
        None => now,
    };
    let currency = match (&body.currency, &entry.currency) {
        (Some(given), fixed) => {
            let code = crate::config::parse_currency(given)
                .ok_or_else(|| bad("currency", "an ISO 4217 code such as EUR"))?;
            if fixed.as_ref().is_some_and(|fixed| *fixed != code) {
                return Err(bad("currency", "not the campaign's currency"));
            }
            code
        }
        (None, Some(fixed)) => fixed.clone(),
        // Resolved against the campaign's first order when recorded.
        (None, None) => String::new(),
    };
    let order = Conversion {
        order_id,
        email,
        value_micros,
        currency,
        at,
        attribution: Attribution::Unattributed,
    };
    Ok((order, body.time.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_holds_per_second() {
        let limit = RateLimit::new(3);
        let allowed = (0..10).filter(|_| limit.allow(5_000)).count();
        assert_eq!(allowed, 3);
        assert!(limit.allow(6_000), "a new second");
    }

    #[test]
    fn signatures_verify_only_under_the_campaign_secret() {
        let postbacks = Postbacks::default();
        let secret = b"a-postback-secret-0123456789";
        postbacks.register("spring", secret, Duration::from_secs(60), None);
        let body = br#"{"email":"a@b.example","order_id":"1","value":"2"}"#;
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let hex = data_encoding::HEXLOWER.encode(hmac::sign(&key, body).as_ref());
        let good = format!("sha256={hex}");
        assert!(verify(&postbacks, "spring", Some(&good), body).is_some());
        assert!(verify(
            &postbacks,
            "spring",
            Some(&good.to_uppercase().replace("SHA256=", "sha256=")),
            body
        )
        .is_some());
        assert!(verify(&postbacks, "autumn", Some(&good), body).is_none());
        assert!(verify(&postbacks, "spring", Some(&good), b"{}").is_none());
        assert!(
            verify(&postbacks, "spring", Some(&hex), body).is_none(),
            "prefix required"
        );
        assert!(verify(&postbacks, "spring", None, body).is_none());
        postbacks.forget("spring");
        assert!(verify(&postbacks, "spring", Some(&good), body).is_none());
    }

    #[test]
    fn bad_fields_are_named() {
        let entry = Campaign {
            key: hmac::Key::new(hmac::HMAC_SHA256, b"k"),
            window: Duration::from_secs(60),
            currency: Some("EUR".to_owned()),
            attributor: Mutex::new(None),
        };
        let field = |body: &str| {
            let (_, json) = parse(&entry, body.as_bytes(), 0).unwrap_err();
            serde_json::from_str::<serde_json::Value>(&json).unwrap()["field"].clone()
        };
        assert_eq!(
            field(r#"{"email":"x","order_id":"1","value":"2"}"#),
            "email"
        );
        assert_eq!(
            field(r#"{"email":"a@b.example","order_id":"","value":"2"}"#),
            "order_id"
        );
        assert_eq!(
            field(r#"{"email":"a@b.example","order_id":"1","value":"-2"}"#),
            "value"
        );
        assert_eq!(
            field(r#"{"email":"a@b.example","order_id":"1","value":2,"currency":"USD"}"#),
            "currency"
        );
        assert_eq!(
            field(r#"{"email":"a@b.example","order_id":"1","value":2,"time":"soon"}"#),
            "time"
        );
        assert_eq!(field("not json"), "body");
        let (order, timed) = parse(
            &entry,
            br#"{"email":"a@b.example","order_id":"1","value":2.5}"#,
            7,
        )
        .unwrap();
        assert_eq!(
            (order.value_micros, order.currency.as_str(), order.at, timed),
            (2_500_000, "EUR", 7, false)
        );
    }
}
