//! Who calls, and whether they may: a request carries `Authorization: Bearer <secret>`; the
//! secret's SHA-256 is compared, in constant time, with every hash of the tokens file. No
//! token or an unknown one gets 401 (`WWW-Authenticate: Bearer`), a token without the scope
//! the route needs 403. A handler states what it needs by the extractor it takes:
//! [`Caller<NeedsRead>`], [`Caller<NeedsSend>`] or [`Caller<NeedsAdmin>`].

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};

use super::problem::Problem;
use super::ApiState;
use crate::config::ApiToken;

pub use crate::config::ApiScope as Scope;

/// The scope a route needs, as a type (for [`Caller`]).
pub trait Needs: Send + Sync + 'static {
    /// The scope.
    const SCOPE: Scope;
}

/// Routes that read (`read`, or `admin`).
#[derive(Debug)]
pub struct NeedsRead;
/// Routes that change things or send (`send`, or `admin`).
#[derive(Debug)]
pub struct NeedsSend;
/// Routes for operators only (`admin`).
#[derive(Debug)]
pub struct NeedsAdmin;

impl Needs for NeedsRead {
    const SCOPE: Scope = Scope::Read;
}
impl Needs for NeedsSend {
    const SCOPE: Scope = Scope::Send;
}
impl Needs for NeedsAdmin {
    const SCOPE: Scope = Scope::Admin;
}

/// An authenticated caller whose token has the scope `S` needs.
#[derive(Debug)]
pub struct Caller<S: Needs> {
    /// The token's name (from the tokens file).
    pub name: String,
    _scope: PhantomData<S>,
}

impl<S: Needs> FromRequestParts<ApiState> for Caller<S> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let token = authenticate(&parts.headers, &state.tokens())?;
        if !token.allows(S::SCOPE) {
            tracing::info!(token = %token.name, path = %parts.uri.path(), "API: refused, scope {} missing", S::SCOPE.as_str());
            return Err(Problem::forbidden(S::SCOPE.as_str()));
        }
        Ok(Caller {
            name: token.name,
            _scope: PhantomData,
        })
    }
}

/// The token of the request's bearer secret, or 401.
pub fn authenticate(
    headers: &axum::http::HeaderMap,
    tokens: &[ApiToken],
) -> Result<ApiToken, Problem> {
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or_else(Problem::unauthorized)?;
    find(tokens, secret)
        .cloned()
        .ok_or_else(Problem::unauthorized)
}

/// The secret of an `Authorization` value of the Bearer scheme (the scheme's name in any case).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, secret) = value.trim().split_once(' ')?;
    let secret = secret.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then_some(secret)
}

/// The token whose hash is the SHA-256 of `secret`. Every token is compared, each in
/// constant time, so the answer's timing says nothing of how close a guess came.
pub fn find<'a>(tokens: &'a [ApiToken], secret: &str) -> Option<&'a ApiToken> {
    let hash = sha256(secret.as_bytes());
    let mut found = None;
    for token in tokens {
        if same(&token.sha256, &hash) && found.is_none() {
            found = Some(token);
        }
    }
    found
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, StatusCode};

    fn token(name: &str, secret: &str, scopes: &[Scope]) -> ApiToken {
        ApiToken {
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            sha256: sha256(secret.as_bytes()),
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn sha256_is_the_one_sha256sum_prints() {
        // printf %s hello | sha256sum
        assert_eq!(
            data_encoding::HEXLOWER.encode(&sha256(b"hello")),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn the_bearer_secret_finds_its_token() {
        let tokens = [
            token("crm", "s3cret-crm", &[Scope::Read]),
            token("shop", "s3cret-shop", &[Scope::Send]),
        ];
        for (value, found) in [
            ("Bearer s3cret-shop", Some("shop")),
            ("bearer s3cret-crm", Some("crm")),
            ("Bearer  s3cret-crm ", Some("crm")),
            ("Bearer s3cret", None),
            ("Bearer ", None),
            ("Basic s3cret-crm", None),
            ("s3cret-crm", None),
        ] {
            let got = authenticate(&headers(value), &tokens).ok().map(|t| t.name);
            assert_eq!(got.as_deref(), found, "{value:?}");
        }
        let missing = authenticate(&HeaderMap::new(), &tokens).unwrap_err();
        assert_eq!(missing.status_code(), StatusCode::UNAUTHORIZED);
    }
}
