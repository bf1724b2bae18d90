//! The relay's access token while a send runs (`[relay] auth = "xoauth2"`): the token in
//! use, fetched anew when the relay refuses it (once per refusal, however many connections
//! were refused with the same token) or, from a command, when it is older than its lifetime.
//! Logging in with it, and retrying once with a fresh token on a new connection, is
//! [`connect_relay`].

use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::config::{TokenError, TokenSource};
use crate::smtp::{self, Credentials, Session, SessionConfig, SmtpError};

/// The token in use and where fresh ones come from; shared by the relay's connections.
pub struct TokenCache {
    source: TokenSource,
    lifetime: Option<Duration>,
    held: tokio::sync::Mutex<Held>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("source", &self.source.key())
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// The current token, when it was fetched and how many fetches came before it.
struct Held {
    token: SecretString,
    fetched: Instant,
    generation: u64,
}

impl TokenCache {
    /// A cache starting with `token` (fetched from `source` just now). With `lifetime`, a
    /// token older than that is fetched anew before it is used.
    pub fn new(source: TokenSource, lifetime: Option<Duration>, token: SecretString) -> Self {
        TokenCache {
            source,
            lifetime,
            held: tokio::sync::Mutex::new(Held {
                token,
                fetched: Instant::now(),
                generation: 0,
            }),
        }
    }

    /// The token to log in with and its generation (for [`TokenCache::refresh`]).
    pub(crate) async fn current(&self) -> Result<(SecretString, u64), TokenError> {
        let mut held = self.held.lock().await;
        let expired = self
            .lifetime
            .is_some_and(|lifetime| held.fetched.elapsed() >= lifetime);
        if expired {
            tracing::info!(
                source = self.source.key(),
                "relay access token is past its lifetime; fetching a fresh one"
            );
            self.fetch_into(&mut held).await?;
        }
        Ok((held.token.clone(), held.generation))
    }

    /// A fresh token after the relay refused generation `seen`: fetched now, unless another
    /// connection already replaced that one.
    pub(crate) async fn refresh(&self, seen: u64) -> Result<(SecretString, u64), TokenError> {
        let mut held = self.held.lock().await;
        if held.generation == seen {
            self.fetch_into(&mut held).await?;
        }
        Ok((held.token.clone(), held.generation))
    }

    /// Fetches on a blocking thread (a command may run for seconds) and keeps the result.
    async fn fetch_into(&self, held: &mut Held) -> Result<(), TokenError> {
        let source = self.source.clone();
        let key = source.key();
        let token = tokio::task::spawn_blocking(move || source.fetch())
            .await
            .map_err(|_| TokenError::Lost { key })??;
        held.token = token;
        held.fetched = Instant::now();
        held.generation += 1;
        Ok(())
    }
}

/// Why a relay session with a token could not be opened.
#[derive(Debug)]
pub(crate) enum RelayDialError {
    /// The session failed (after one retry with a fresh token when the token was refused).
    Smtp(SmtpError),
    /// No fresh token could be had.
    Token(TokenError),
}

impl From<TokenError> for RelayDialError {
    fn from(error: TokenError) -> Self {
        RelayDialError::Token(error)
    }
}

/// Opens a session to the relay. With a token cache, logs in with its token; when the
/// relay refuses it (a 5xx to AUTH), fetches a fresh one and tries once more on a new
/// connection. Without one, this is [`smtp::connect`].
pub(crate) async fn connect_relay(
    config: &SessionConfig,
    token: Option<&TokenCache>,
) -> Result<Session, RelayDialError> {
    let Some(cache) = token else {
        return smtp::connect(config).await.map_err(RelayDialError::Smtp);
    };
    let (secret, generation) = cache.current().await?;
    match smtp::connect(&with_token(config, secret)).await {
        Err(error) if is_refused_login(&error) => {
            tracing::info!(host = %config.host, %error, "relay refused the access token; fetching a fresh one and trying again");
            let (secret, _) = cache.refresh(generation).await?;
            smtp::connect(&with_token(config, secret))
                .await
                .map_err(RelayDialError::Smtp)
        }
        other => other.map_err(RelayDialError::Smtp),
    }
}

/// `config` logging in with `token` as its credentials' user.
fn with_token(config: &SessionConfig, token: SecretString) -> SessionConfig {
    let mut config = config.clone();
    let username = config
        .credentials
        .as_ref()
        .map(|c| c.username.clone())
        .unwrap_or_default();
    config.credentials = Some(Credentials::xoauth2(username, token));
    config
}

/// A permanent refusal of the login (535 and the like): the token may have expired.
fn is_refused_login(error: &SmtpError) -> bool {
    matches!(error, SmtpError::AuthFailed { reply, .. } if reply.is_permanent())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    /// A command printing `token-N` on its Nth run (counted in a file in `dir`).
    fn counting(dir: &std::path::Path) -> TokenSource {
        let count = dir.join("count");
        let script = format!(
            "n=$(( $(cat '{0}' 2>/dev/null || echo 0) + 1 )); echo $n > '{0}'; echo token-$n",
            count.display()
        );
        TokenSource::Command {
            argv: vec!["sh".into(), "-c".into(), script],
            timeout: Duration::from_secs(20),
        }
    }

    const LIMIT: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn a_refusal_fetches_once_however_many_connections_saw_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(counting(dir.path()), None, "token-0".to_owned().into());
        let (token, seen) = cache.current().await.unwrap();
        assert_eq!((token.expose_secret(), seen), ("token-0", 0));
        let first = tokio::time::timeout(LIMIT, cache.refresh(seen))
            .await
            .unwrap()
            .unwrap();
        let second = tokio::time::timeout(LIMIT, cache.refresh(seen))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((first.0.expose_secret(), first.1), ("token-1", 1));
        assert_eq!(
            (second.0.expose_secret(), second.1),
            ("token-1", 1),
            "no second run"
        );
        let again = tokio::time::timeout(LIMIT, cache.refresh(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.0.expose_secret(), "token-2");
    }

    #[tokio::test]
    async fn a_command_token_past_its_lifetime_is_fetched_before_use() {
        let dir = tempfile::tempdir().unwrap();
        let source = counting(dir.path());
        // A lifetime of zero: every token is already past it.
        let cache = TokenCache::new(
            source.clone(),
            Some(Duration::ZERO),
            "token-0".to_owned().into(),
        );
        let (token, generation) = tokio::time::timeout(LIMIT, cache.current())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((token.expose_secret(), generation), ("token-1", 1));
        // Without a lifetime (a file or a variable) the token is kept until refused.
        let kept = TokenCache::new(source, None, "token-x".to_owned().into());
        let (token, _) = kept.current().await.unwrap();
        assert_eq!(token.expose_secret(), "token-x");
    }
}
