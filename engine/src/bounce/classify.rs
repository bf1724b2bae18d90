//! Failure classification: every failed delivery, whether a synchronous SMTP reply or a DSN
//! that arrives days later, passes through [`Classifier::classify`] once and leaves with a
//! [`Category`] and a hard/soft verdict. Delivery, DSN intake and reports match on that result,
//! never on reply text.
//!
//! The rules live in a TOML file (`default_rules.toml`, embedded; its header documents the
//! format). Users may add a file of their own whose rules are consulted before the defaults.
//!
//! Precedence, for one reply (within each step, first matching rule wins, user rules first):
//!
//! 1. rules naming a `status` *and* `contains`; then status-only rules, but only when the
//!    reply's enhanced code is specific (`5.1.1`, `5.7.26`…);
//! 2. text rules (`contains` without `status`), which thereby refine a generic enhanced code
//!    (`x.y.0` such as `5.0.0` or `5.5.0`, and the catch-all `x.7.1`) or a bare basic code;
//! 3. status-only rules for a generic enhanced code, and rules on the basic `code` alone;
//! 4. otherwise `other`, soft.
//!
//! Hard means gone: only `user_unknown`, `no_such_domain` and `mailbox_disabled` (and the
//! older `dns_routing`) are hard, and only with a permanent (5xx) class.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use serde::Serialize;

use crate::model::Category;

mod parse;

/// The shipped default rules, documented in their own header.
const DEFAULT_RULES: &str = include_str!("default_rules.toml");

/// What a failure means: its category, and whether retrying the same message is pointless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Classification {
    /// Why the delivery failed.
    pub category: Category,
    /// The address is gone: a permanent failure whose reason says the mailbox or its domain
    /// does not exist or no longer takes mail ([`Category::means_gone`]), unless a rule says
    /// otherwise. 4xx replies are never hard; a full mailbox, a block, a policy or spam
    /// rejection, a security error or a rate limit is soft even with a 5xx code.
    pub hard: bool,
}

impl Classification {
    /// True when the failure says the *address* is bad (unknown, disabled, or its domain
    /// gone) and permanently so: the signal list hygiene uses to suppress a recipient at
    /// once. A rule may mark another reason hard; it still does not blame the address.
    pub fn blames_recipient(&self) -> bool {
        self.hard && self.category.means_gone()
    }
}

/// The compiled rule set; cheap to clone and shareable across threads.
#[derive(Debug, Clone)]
pub struct Classifier {
    rules: Arc<[Rule]>,
    /// Every rule's text patterns in one automaton: a reply is scanned once, whatever the
    /// number of patterns.
    patterns: Arc<Patterns>,
}

/// The text patterns of all rules, and which rule each belongs to.
#[derive(Debug)]
struct Patterns {
    automaton: Option<AhoCorasick>,
    rule_of: Box<[usize]>,
}

impl Patterns {
    fn new(rules: &[Rule]) -> Patterns {
        let mut texts = Vec::new();
        let mut rule_of = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            for pattern in rule.contains.iter() {
                texts.push(&**pattern);
                rule_of.push(index);
            }
        }
        Patterns {
            // Building fails only past the automaton's size limits, far beyond any rule
            // file; then each rule scans for its own patterns instead.
            automaton: AhoCorasick::builder()
                .kind(Some(AhoCorasickKind::DFA))
                .build(&texts)
                .ok(),
            rule_of: rule_of.into(),
        }
    }

    /// Which rules have a text pattern occurring in `lower` (indexed like the rules);
    /// `None` when there is no automaton.
    fn hits(&self, lower: &str, rules: usize) -> Option<Vec<bool>> {
        let automaton = self.automaton.as_ref()?;
        let mut hit = vec![false; rules];
        for found in automaton.find_overlapping_iter(lower) {
            if let Some(&rule) = self.rule_of.get(found.pattern().as_usize()) {
                if let Some(slot) = hit.get_mut(rule) {
                    *slot = true;
                }
            }
        }
        Some(hit)
    }
}

impl Classifier {
    fn new(rules: Vec<Rule>) -> Classifier {
        let patterns = Arc::new(Patterns::new(&rules));
        Classifier {
            rules: rules.into(),
            patterns,
        }
    }
}

/// A problem in a rule file: which file, where, which key, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", location(.path, .line, .key))]
#[non_exhaustive]
pub struct RulesError {
    /// The rule file.
    pub path: PathBuf,
    /// The 1-based line of the problem, when it has one.
    pub line: Option<usize>,
    /// The TOML key at fault (as written in the file), when there is one.
    pub key: Option<String>,
    /// What is wrong.
    pub reason: RuleProblem,
}

/// What is wrong in a rule file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleProblem {
    /// The file could not be read.
    #[error("cannot read the rule file: {0}")]
    Read(#[source] std::io::Error),
    /// The file is not valid TOML.
    #[error("invalid TOML: {message}")]
    Syntax {
        /// The TOML parser's message.
        message: String,
    },
    /// Valid TOML, but not a list of `[[rule]]` tables.
    #[error("expected [[rule]] tables: {message}")]
    Shape {
        /// The TOML parser's message.
        message: String,
    },
    /// A key the format does not know (often a typo).
    #[error("unknown key (expected one of: {expected})")]
    UnknownKey {
        /// The keys allowed at that place.
        expected: &'static str,
    },
    /// A value of the wrong TOML type.
    #[error("expected {expected}")]
    WrongType {
        /// The type the key needs.
        expected: &'static str,
    },
    /// A category name that is not one of [`Category::ALL`] (nor an older alias).
    #[error("unknown category `{value}` (expected one of: {})", category_names())]
    UnknownCategory {
        /// The name found in the file.
        value: String,
    },
    /// A status pattern that is not `d.d.d` with optional `*` parts.
    #[error("`{value}` is not an enhanced status pattern like 5.1.1, 5.7.* or *.7.26")]
    BadStatus {
        /// The pattern found in the file.
        value: String,
    },
    /// A basic reply code outside 200..=599.
    #[error("`{value}` is not an SMTP reply code (200 to 599)")]
    BadCode {
        /// The number found in the file.
        value: i64,
    },
    /// An empty string in `contains`, which would match every reply.
    #[error("an empty text pattern would match every reply")]
    EmptyPattern,
    /// A rule without `category`.
    #[error("this rule has no category")]
    MissingCategory,
    /// A rule without any condition, which would match every reply.
    #[error("a rule needs at least one of status, contains or code")]
    NoCondition,
}

/// `path:line: key `k`` for an error message.
fn location(path: &Path, line: &Option<usize>, key: &Option<String>) -> String {
    let mut out = path.display().to_string();
    if let Some(line) = line {
        out.push_str(&format!(":{line}"));
    }
    if let Some(key) = key {
        out.push_str(&format!(": key `{key}`"));
    }
    out
}

fn category_names() -> String {
    let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    names.join(", ")
}

/// One compiled rule: every given condition must hold.
#[derive(Debug, Clone)]
struct Rule {
    status: Option<StatusPattern>,
    /// Lowercased patterns, any of which must occur in the lowercased text; empty: no condition.
    contains: Box<[Box<str>]>,
    code: Option<u16>,
    category: Category,
    hard: Option<bool>,
}

/// An enhanced status pattern; `None` parts are wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatusPattern([Option<u16>; 3]);

/// A parsed RFC 3463 enhanced status code `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Enhanced([u16; 3]);

impl Enhanced {
    /// Parses `5.1.1` leniently (surrounding blanks allowed); anything else is `None`.
    fn parse(s: &str) -> Option<Enhanced> {
        let mut parts = s.trim().split('.');
        let mut out = [0u16; 3];
        for slot in &mut out {
            *slot = parse_number(parts.next()?)?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some(Enhanced(out))
    }

    /// `x.y.0` ("other or undefined" in its subject) and the catch-all `x.7.1` say little:
    /// the reply text may refine them.
    fn is_generic(self) -> bool {
        let [_, subject, detail] = self.0;
        detail == 0 || (subject == 7 && detail == 1)
    }
}

/// A decimal of 1 to 3 digits.
fn parse_number(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl StatusPattern {
    fn matches(self, code: Enhanced) -> bool {
        self.0
            .iter()
            .zip(code.0)
            .all(|(want, got)| want.is_none_or(|want| want == got))
    }
}

/// When a rule is consulted, given how specific the reply's enhanced code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    StatusFirst,
    Text,
    StatusLast,
}

impl Rule {
    fn step(&self, specific_status: bool) -> Step {
        match (self.status.is_some(), !self.contains.is_empty()) {
            (true, true) => Step::StatusFirst,
            (true, false) if specific_status => Step::StatusFirst,
            (false, true) => Step::Text,
            _ => Step::StatusLast,
        }
    }

    /// Whether the rule's code and status conditions hold (its text is checked apart).
    fn matches_codes(&self, code: Option<u16>, enhanced: Option<Enhanced>) -> bool {
        if let Some(want) = self.code {
            if code != Some(want) {
                return false;
            }
        }
        if let Some(pattern) = self.status {
            if !enhanced.is_some_and(|e| pattern.matches(e)) {
                return false;
            }
        }
        true
    }
}

impl Classifier {
    /// The shipped default rules (`default_rules.toml`), parsed once on first use.
    pub fn builtin() -> Classifier {
        static BUILTIN: OnceLock<Classifier> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                #[allow(clippy::expect_used)]
                // invariant: the embedded defaults are fixed at build time and the unit test
                // `builtin_rules_parse` proves they parse.
                Classifier::from_toml(DEFAULT_RULES, Path::new("default_rules.toml"))
                    .expect("embedded default_rules.toml parses")
            })
            .clone()
    }

    /// The defaults extended (or overridden) by the user's rule file at `path`, whose rules
    /// are consulted before the defaults at each precedence step.
    pub fn with_rules_file(path: &Path) -> Result<Classifier, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|err| RulesError {
            path: path.to_path_buf(),
            line: None,
            key: None,
            reason: RuleProblem::Read(err),
        })?;
        let user = parse::rules(&text, path)?;
        let builtin = Classifier::builtin();
        let rules: Vec<Rule> = user
            .into_iter()
            .chain(builtin.rules.iter().cloned())
            .collect();
        Ok(Classifier::new(rules))
    }

    /// Exactly the rules in `text` (no defaults); `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Classifier, RulesError> {
        Ok(Classifier::new(parse::rules(text, origin)?))
    }

    /// Classifies one failure from its basic reply code, enhanced status code (`"5.1.1"`) and
    /// reply or diagnostic text. Any input is accepted; unparseable codes count as missing.
    pub fn classify(
        &self,
        code: Option<u16>,
        enhanced: Option<&str>,
        text: &str,
    ) -> Classification {
        let enhanced = enhanced.and_then(Enhanced::parse);
        let specific = enhanced.is_some_and(|e| !e.is_generic());
        let lower = text.to_lowercase();
        let class = reply_class(code, enhanced);
        // The text is scanned once, and only when a rule with text gets that far.
        let hits = OnceCell::new();
        let text_holds = |index: usize, rule: &Rule| {
            if rule.contains.is_empty() {
                return true;
            }
            // A rule with a few patterns (status and text) is quicker checked by itself.
            if rule.contains.len() <= 4 {
                return rule.contains.iter().any(|p| lower.contains(&**p));
            }
            match hits.get_or_init(|| self.patterns.hits(&lower, self.rules.len())) {
                Some(hits) => hits.get(index).copied().unwrap_or(false),
                None => rule.contains.iter().any(|p| lower.contains(&**p)),
            }
        };
        for step in [Step::StatusFirst, Step::Text, Step::StatusLast] {
            let found = self.rules.iter().enumerate().find(|(index, rule)| {
                rule.step(specific) == step
                    && rule.matches_codes(code, enhanced)
                    && text_holds(*index, rule)
            });
            let found = found.map(|(_, rule)| rule);
            if let Some(rule) = found {
                return Classification {
                    category: rule.category,
                    hard: hardness(class, rule.category, rule.hard),
                };
            }
        }
        Classification {
            category: Category::Other,
            hard: false,
        }
    }
}

impl Default for Classifier {
    /// The shipped defaults, as [`Classifier::builtin`].
    fn default() -> Classifier {
        Classifier::builtin()
    }
}

/// The reply class (2, 4 or 5): from the basic code when it has a known class, else from the
/// enhanced code (a DSN's `Status:` alone).
fn reply_class(code: Option<u16>, enhanced: Option<Enhanced>) -> Option<u16> {
    let known = |class: u16| matches!(class, 2 | 4 | 5).then_some(class);
    code.and_then(|c| known(c / 100))
        .or_else(|| enhanced.and_then(|e| known(e.0[0])))
}

/// Only a permanent class can be hard. A rule's `hard` decides within it; by default only
/// the reasons that mean the address is gone are hard. With no class at all (text only), a
/// matched rule is trusted as if the failure were permanent.
fn hardness(class: Option<u16>, category: Category, rule_hard: Option<bool>) -> bool {
    match class {
        Some(5) | None => rule_hard.unwrap_or(category.means_gone()),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests;
