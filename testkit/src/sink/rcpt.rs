//! RCPT TO: the recipient scripts (`bounce`, `defer`, `421`, `grey`, `throttle`…), the
//! policy block and the per-domain rate limit, the ways the sink refuses a recipient.

use super::commands::parse_path;
use super::rate::ThrottleReply;
use super::script::{domain_of, script_for, Script};
use super::session::{Session, Step};

impl Session {
    /// Handles `RCPT TO:<addr>`: the script may refuse the address; one it would accept is
    /// then checked against the rate limit, and only an accepted one is counted in it.
    pub(crate) fn rcpt(&mut self, arg: &str) -> Step {
        if self.tx.mail_from.is_none() {
            return self.ok("503 5.5.1 need MAIL first");
        }
        let Some((to, _)) = parse_path(arg, "TO:") else {
            return self.ok("501 5.5.4 syntax: RCPT TO:<address>");
        };
        let to = to.to_owned();
        let domain = domain_of(&to);
        self.guard.note_domain(domain.clone());
        let script = if self.ctx.config.scripted {
            script_for(&to)
        } else {
            Script::Accept
        };
        if let Some((line, step)) = self.script_refusal(&to, script) {
            self.ctx.shared.recipient_rejected();
            self.reply(&line);
            return step;
        }
        if let Some(block) = &self.ctx.config.policy_block {
            if self.ctx.shared.policy_blocks(&domain, block) {
                let line = block.reply.clone();
                self.reply(&line);
                return Step::Continue;
            }
        }
        if let Some(limit) = self.ctx.config.rate_limit {
            if !self.ctx.shared.admit(&domain, &limit) {
                self.reply(&limit.reply.line(&domain));
                return match limit.reply {
                    ThrottleReply::Close421 => Step::Close,
                    ThrottleReply::Defer451 | ThrottleReply::Mail451 => Step::Continue,
                };
            }
        }
        self.tx.rcpts.push((to, script));
        self.ok("250 2.1.5 Recipient ok")
    }

    /// The reply (and what follows it) when `script` refuses `to` now; `None` when the
    /// script lets it through.
    fn script_refusal(&self, to: &str, script: Script) -> Option<(String, Step)> {
        let shared = &self.ctx.shared;
        let line = match script {
            Script::Bounce => format!("550 5.1.1 <{to}>: user unknown"),
            Script::Blocked => format!("550 5.7.1 <{to}>: message blocked by policy"),
            Script::Defer if shared.first_time(to) => "451 4.7.1 try again later".to_owned(),
            Script::Throttle if shared.first_time(to) => {
                "450 4.7.0 too many messages, slow down".to_owned()
            }
            Script::Close421 if shared.first_time(to) => {
                return Some(("421 4.7.0 closing".to_owned(), Step::Close));
            }
            Script::Grey if self.greylisted(to) => {
                "451 4.7.1 greylisted, try again later".to_owned()
            }
            _ => return None,
        };
        Some((line, Step::Continue))
    }

    /// True while `to` was first seen less than `greylist_delay` ago (now, the first time).
    fn greylisted(&self, to: &str) -> bool {
        let first = self.ctx.shared.first_seen_at(to);
        self.ctx.shared.now().saturating_duration_since(first) < self.ctx.config.greylist_delay
    }
}
