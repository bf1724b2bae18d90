//! The sink's AUTH XOAUTH2, as Gmail answers it: the accepted user and token get `235`;
//! anything else gets a `334` challenge carrying a base64 JSON error, and after the
//! client's (empty) answer, `535 5.7.8`.

use super::commands::decode;
use super::session::{Mode, Session, Step};

/// Google's error challenge: base64 of
/// `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`.
const ERROR_CHALLENGE: &str = "334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJ\
                               odHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==";

impl Session {
    /// Whether this sink wants a login at all (password or token).
    pub(crate) fn auth_required(&self) -> bool {
        self.ctx.config.auth.is_some() || self.ctx.config.xoauth2.is_some()
    }

    /// The mechanisms to advertise now (none before TLS when TLS is configured).
    pub(crate) fn auth_mechanisms(&self) -> Option<String> {
        let config = &self.ctx.config;
        let tls_first = config.tls != super::SinkTls::None && !self.tls;
        if tls_first || !self.auth_required() {
            return None;
        }
        let mut mechanisms = Vec::new();
        if config.auth.is_some() {
            mechanisms.extend(["PLAIN", "LOGIN"]);
        }
        if config.xoauth2.is_some() {
            mechanisms.push("XOAUTH2");
        }
        Some(mechanisms.join(" "))
    }

    /// `AUTH XOAUTH2` with its initial response, or an empty challenge for it.
    pub(crate) fn auth_xoauth2(&mut self, initial: &str) -> Step {
        if initial.is_empty() {
            self.mode = Mode::AuthXoauth2;
            return self.ok("334 ");
        }
        self.auth_xoauth2_response(initial)
    }

    /// Checks `user=U ^A auth=Bearer T ^A ^A` against the one accepted user and token.
    pub(crate) fn auth_xoauth2_response(&mut self, line: &str) -> Step {
        if line == "*" {
            return self.ok("501 5.0.0 authentication cancelled");
        }
        let Some(decoded) = decode(line) else {
            return self.ok("501 5.5.2 invalid base64");
        };
        let text = String::from_utf8_lossy(&decoded);
        let Some((user, token)) = parse(&text) else {
            return self.ok("501 5.5.2 malformed XOAUTH2 response");
        };
        let accepted = self
            .ctx
            .config
            .xoauth2
            .as_ref()
            .is_some_and(|(u, t)| u == user && t == token);
        if accepted {
            self.auth_user = Some(user.to_owned());
            return self.ok("235 2.7.0 Accepted");
        }
        self.mode = Mode::AuthXoauth2Error;
        self.ok(ERROR_CHALLENGE)
    }

    /// The final refusal after the error challenge.
    pub(crate) fn auth_xoauth2_failed(&mut self) -> Step {
        self.ctx.shared.auth_failure();
        self.ok("535-5.7.8 Username and Password not accepted.\r\n535 5.7.8 try a fresh token")
    }
}

/// The user and token of an XOAUTH2 initial response.
fn parse(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_suffix("\x01\x01")?;
    let (user, auth) = rest.split_once('\x01')?;
    Some((
        user.strip_prefix("user=")?,
        auth.strip_prefix("auth=Bearer ")?,
    ))
}

/// The XOAUTH2 initial response for `user` and `token`, base64 (for tests of the sink).
#[cfg(test)]
pub(crate) fn initial_response(user: &str, token: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_parses_back() {
        let raw = "user=a@b.example\x01auth=Bearer tok\x01\x01";
        assert_eq!(parse(raw), Some(("a@b.example", "tok")));
        assert_eq!(parse("user=a\x01auth=Basic x\x01\x01"), None);
        assert_eq!(parse("user=a\x01auth=Bearer x"), None);
        let decoded = decode(&initial_response("u", "t")).unwrap();
        assert_eq!(decoded, b"user=u\x01auth=Bearer t\x01\x01");
    }
}
