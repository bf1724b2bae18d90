//! The sink's SMTP command handlers: EHLO/HELO, STARTTLS, AUTH, MAIL, DATA, BDAT, RSET,
//! NOOP and QUIT (RCPT, with the recipient scripts and the rate limit, is in `rcpt.rs`).
//! Each queues its reply and tells the session loop what to do next.

use base64::Engine as _;

use super::data::DataScan;
use super::rate::ThrottleReply;
use super::script::{domain_of, script_for, Script};
use super::session::{Mode, Session, Step, Transaction};
use super::SinkTls;

/// Splits `FROM:<a@b> SIZE=1` (after the keyword) into the address and its parameters.
pub(crate) fn parse_path<'a>(arg: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        Some((&inner[..end], inner[end + 1..].trim()))
    } else {
        let (addr, params) = rest.split_once(' ').unwrap_or((rest, ""));
        (!addr.is_empty()).then_some((addr, params.trim()))
    }
}

/// The `SIZE=` value among MAIL parameters, if any.
fn size_param(params: &str) -> Option<usize> {
    params.split_ascii_whitespace().find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.eq_ignore_ascii_case("SIZE")
            .then(|| value.parse().ok())?
    })
}

pub(crate) fn decode(b64: &str) -> Option<Vec<u8>> {
    if b64 == "=" {
        return Some(Vec::new());
    }
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
}

impl Session {
    /// Handles one input line according to the mode (a command or an AUTH response).
    pub(crate) fn line(&mut self, line: &str) -> Step {
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::AuthPlain => self.auth_plain_response(line),
            Mode::AuthLoginUser => self.auth_login_user(line),
            Mode::AuthLoginPass(user) => self.auth_login_pass(&user, line),
            Mode::AuthXoauth2 => self.auth_xoauth2_response(line),
            Mode::AuthXoauth2Error => self.auth_xoauth2_failed(),
            _ => self.command(line),
        }
    }

    fn command(&mut self, line: &str) -> Step {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.trim();
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => self.ehlo(arg),
            "HELO" => self.helo(arg),
            "STARTTLS" => self.starttls(),
            "AUTH" => self.auth(arg),
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => self.data(),
            "BDAT" if self.ctx.config.chunking => self.bdat(arg),
            "RSET" => {
                self.tx = Transaction::default();
                self.ok("250 2.0.0 Ok")
            }
            "NOOP" => self.ok("250 2.0.0 Ok"),
            "QUIT" => {
                self.reply("221 2.0.0 Bye");
                Step::Close
            }
            _ => self.ok("500 5.5.2 command not recognized"),
        }
    }

    pub(crate) fn ok(&mut self, line: &str) -> Step {
        self.reply(line);
        Step::Continue
    }

    fn tls_required(&self) -> bool {
        self.ctx.config.tls != SinkTls::None && !self.tls
    }

    fn ehlo(&mut self, arg: &str) -> Step {
        if arg.is_empty() {
            return self.ok("501 5.5.4 EHLO needs a domain");
        }
        self.greeted = true;
        self.helo = Some(arg.to_owned());
        self.tx = Transaction::default();
        let config = &self.ctx.config;
        let mut lines = vec![format!("{} greets {arg}", config.hostname)];
        if config.pipelining {
            lines.push("PIPELINING".to_owned());
        }
        lines.push("8BITMIME".to_owned());
        lines.push(format!("SIZE {}", config.size_limit.unwrap_or(0)));
        if config.tls == SinkTls::StartTls && !self.tls {
            lines.push("STARTTLS".to_owned());
        }
        if let Some(mechanisms) = self.auth_mechanisms() {
            lines.push(format!("AUTH {mechanisms}"));
        }
        if config.chunking {
            lines.push("CHUNKING".to_owned());
        }
        lines.push("ENHANCEDSTATUSCODES".to_owned());
        let last = lines.len() - 1;
        for (i, text) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.reply(&format!("250{sep}{text}"));
        }
        Step::Continue
    }

    fn helo(&mut self, arg: &str) -> Step {
        if arg.is_empty() {
            return self.ok("501 5.5.4 HELO needs a domain");
        }
        self.greeted = true;
        self.helo = Some(arg.to_owned());
        self.tx = Transaction::default();
        let line = format!("250 {}", self.ctx.config.hostname);
        self.ok(&line)
    }

    fn starttls(&mut self) -> Step {
        if self.ctx.config.tls != SinkTls::StartTls || self.tls {
            return self.ok("502 5.5.1 STARTTLS not available");
        }
        self.reply("220 2.0.0 Ready to start TLS");
        if self.ctx.config.broken_starttls {
            return Step::BreakTls;
        }
        Step::StartTls
    }

    fn mail(&mut self, arg: &str) -> Step {
        if !self.greeted {
            return self.ok("503 5.5.1 send EHLO or HELO first");
        }
        if self.auth_required() && self.auth_user.is_none() {
            return self.ok("530 5.7.0 authentication required");
        }
        if self.tx.mail_from.is_some() {
            return self.ok("503 5.5.1 sender already given");
        }
        let Some((from, params)) = parse_path(arg, "FROM:") else {
            return self.ok("501 5.5.4 syntax: MAIL FROM:<address>");
        };
        if let Some(closing) = self.closing_reply() {
            self.reply(closing);
            return Step::Close;
        }
        let limit = self.ctx.config.size_limit;
        if let (Some(limit), Some(size)) = (limit, size_param(params)) {
            if size > limit {
                return self.ok("552 5.3.4 message size exceeds fixed limit");
            }
        }
        if let Some(line) = self.rate_limited_ahead() {
            self.reply(&line);
            return Step::Continue;
        }
        if self.mail_refused_ahead() {
            self.ctx.shared.transaction_refused();
            return self.ok(&format!("550 5.7.1 <{from}>: sender rejected"));
        }
        self.tx.mail_from = Some(from.to_owned());
        self.ok("250 2.1.0 Sender ok")
    }

    /// The 421 that ends this connection at MAIL, if the per-connection cap is reached or
    /// every connection was told to close since this one opened.
    fn closing_reply(&mut self) -> Option<&'static str> {
        if self.ctx.shared.close_epoch() > self.epoch {
            return Some("421 4.7.0 Message limit reached");
        }
        let cap = self.ctx.config.messages_per_connection?;
        (self.guard.messages() >= cap).then_some("421 4.7.0 Too many messages on this connection")
    }

    /// Under a [`ThrottleReply::Mail451`] rate limit, the refusal for this MAIL when a RCPT
    /// pipelined right behind it names a domain over its limit.
    fn rate_limited_ahead(&self) -> Option<String> {
        let limit = self.ctx.config.rate_limit?;
        if limit.reply != ThrottleReply::Mail451 {
            return None;
        }
        let domain = self
            .pipelined_rcpts()
            .into_iter()
            .map(|to| domain_of(&to))
            .find(|domain| self.ctx.shared.over_limit(domain, &limit))?;
        Some(limit.reply.line(&domain))
    }

    /// The addresses of the RCPT lines pipelined right behind the current command.
    fn pipelined_rcpts(&self) -> Vec<String> {
        self.unread()
            .split(|&b| b == b'\n')
            .map_while(|line| {
                let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
                let (verb, arg) = line.split_once(' ')?;
                verb.eq_ignore_ascii_case("RCPT").then(|| arg.trim())
            })
            .filter_map(|arg| parse_path(arg, "TO:").map(|(to, _)| to.to_owned()))
            .collect()
    }

    /// Whether a RCPT pipelined right behind this MAIL names a `mail550…@` recipient (the
    /// `mail550` script). Only the RCPT lines that directly follow are looked at.
    fn mail_refused_ahead(&self) -> bool {
        if !self.ctx.config.scripted {
            return false;
        }
        self.unread()
            .split(|&b| b == b'\n')
            .map_while(|line| {
                let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
                let (verb, arg) = line.split_once(' ')?;
                verb.eq_ignore_ascii_case("RCPT").then(|| arg.trim())
            })
            .filter_map(|arg| parse_path(arg, "TO:"))
            .any(|(to, _)| script_for(to) == Script::MailRefused)
    }

    /// Whether this transaction trips the `drop` script (first time for its address).
    fn arm_drop(&mut self) -> bool {
        let shared = &self.ctx.shared;
        let mut armed = false;
        for (addr, script) in &self.tx.rcpts {
            if *script == Script::Drop && shared.first_time(addr) {
                armed = true;
            }
        }
        self.tx.drop_armed = armed;
        armed
    }

    fn keep_limit(&self) -> usize {
        let config = &self.ctx.config;
        if config.keep_bodies {
            config.size_limit.unwrap_or(usize::MAX)
        } else {
            0
        }
    }

    fn data(&mut self) -> Step {
        if self.tx.mail_from.is_none() {
            return self.ok("503 5.5.1 need MAIL first");
        }
        if self.tx.rcpts.is_empty() {
            return self.ok("554 5.5.1 no valid recipients");
        }
        if self.tx.has(Script::DataRefused) {
            self.ctx.shared.transaction_refused();
            self.tx = Transaction::default();
            return self.ok("554 5.7.1 DATA refused by policy");
        }
        self.arm_drop();
        self.mode = Mode::Data(DataScan::new(self.keep_limit()));
        self.ok("354 start mail input; end with <CRLF>.<CRLF>")
    }

    fn bdat(&mut self, arg: &str) -> Step {
        let mut words = arg.split_ascii_whitespace();
        let size = words.next().and_then(|n| n.parse::<usize>().ok());
        let last = words.next().map(|w| w.eq_ignore_ascii_case("LAST"));
        let (Some(size), Some(last), None) = (size, last.or(Some(false)), words.next()) else {
            self.reply("501 5.5.4 syntax: BDAT <size> [LAST]");
            return Step::Close;
        };
        let valid = self.tx.mail_from.is_some() && !self.tx.rcpts.is_empty();
        if valid && self.tx.bdat.is_none() {
            if self.arm_drop() {
                return Step::Abort;
            }
            self.tx.bdat = Some(DataScan::new(self.keep_limit()));
        }
        self.mode = Mode::Bdat {
            remaining: size,
            last,
            valid,
        };
        Step::Continue
    }

    fn auth(&mut self, arg: &str) -> Step {
        if !self.auth_required() {
            return self.ok("502 5.5.1 AUTH not available");
        }
        if self.tls_required() {
            return self.ok("530 5.7.0 must issue a STARTTLS command first");
        }
        if self.auth_user.is_some() || self.tx.mail_from.is_some() {
            return self.ok("503 5.5.1 AUTH not allowed now");
        }
        let (mechanism, initial) = arg.split_once(' ').unwrap_or((arg, ""));
        let mechanism = mechanism.to_ascii_uppercase();
        if mechanism == "XOAUTH2" && self.ctx.config.xoauth2.is_some() {
            return self.auth_xoauth2(initial.trim());
        }
        if self.ctx.config.auth.is_none() {
            return self.ok("504 5.5.4 unrecognized authentication type");
        }
        match (mechanism.as_str(), initial.trim()) {
            ("PLAIN", "") => {
                self.mode = Mode::AuthPlain;
                self.ok("334 ")
            }
            ("PLAIN", response) => self.auth_plain_response(response),
            ("LOGIN", "") => {
                self.mode = Mode::AuthLoginUser;
                self.ok("334 VXNlcm5hbWU6")
            }
            ("LOGIN", user) => self.auth_login_user(user),
            _ => self.ok("504 5.5.4 unrecognized authentication type"),
        }
    }

    fn auth_plain_response(&mut self, line: &str) -> Step {
        if line == "*" {
            return self.ok("501 5.0.0 authentication cancelled");
        }
        let Some(decoded) = decode(line) else {
            return self.ok("501 5.5.2 invalid base64");
        };
        let mut parts = decoded.split(|&b| b == 0);
        let (_authzid, user, pass) = (parts.next(), parts.next(), parts.next());
        match (user, pass, parts.next()) {
            (Some(user), Some(pass), None) => {
                let user = String::from_utf8_lossy(user).into_owned();
                let pass = String::from_utf8_lossy(pass);
                self.check_credentials(user, &pass)
            }
            _ => self.ok("501 5.5.2 malformed AUTH PLAIN response"),
        }
    }

    fn auth_login_user(&mut self, line: &str) -> Step {
        if line == "*" {
            return self.ok("501 5.0.0 authentication cancelled");
        }
        let Some(user) = decode(line) else {
            return self.ok("501 5.5.2 invalid base64");
        };
        self.mode = Mode::AuthLoginPass(String::from_utf8_lossy(&user).into_owned());
        self.ok("334 UGFzc3dvcmQ6")
    }

    fn auth_login_pass(&mut self, user: &str, line: &str) -> Step {
        if line == "*" {
            return self.ok("501 5.0.0 authentication cancelled");
        }
        let Some(pass) = decode(line) else {
            return self.ok("501 5.5.2 invalid base64");
        };
        self.check_credentials(user.to_owned(), &String::from_utf8_lossy(&pass))
    }

    fn check_credentials(&mut self, user: String, pass: &str) -> Step {
        let matches = self
            .ctx
            .config
            .auth
            .as_ref()
            .is_some_and(|(u, p)| *u == user && p == pass);
        if matches {
            self.auth_user = Some(user);
            self.ok("235 2.7.0 authentication successful")
        } else {
            self.ctx.shared.auth_failure();
            self.ok("535 5.7.8 authentication failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_params_parse() {
        assert_eq!(
            parse_path("FROM:<a@b.c> SIZE=10 BODY=8BITMIME", "FROM:"),
            Some(("a@b.c", "SIZE=10 BODY=8BITMIME"))
        );
        assert_eq!(parse_path("from: <>", "FROM:"), Some(("", "")));
        assert_eq!(parse_path("TO:x@y", "TO:"), Some(("x@y", "")));
        assert_eq!(parse_path("TO:<x@y", "TO:"), None);
        assert_eq!(parse_path("FROM<a@b>", "FROM:"), None);
        assert_eq!(size_param("BODY=8BITMIME size=42"), Some(42));
        assert_eq!(size_param("BODY=8BITMIME"), None);
    }
}
