//! Reading a rule file: TOML with spans, then each key checked by hand so that every problem
//! names its file, line and key.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::de::IgnoredAny;
use toml::{Spanned, Value};

use super::{parse_number, Rule, RuleProblem, RulesError, StatusPattern};
use crate::model::Category;

const TOP_KEYS: &str = "rule";
const RULE_KEYS: &str = "status, contains, code, category, hard";

/// One `[[rule]]` table, keys and values with their spans.
type RawRule = BTreeMap<Spanned<String>, Spanned<Value>>;

#[derive(serde::Deserialize)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

/// Parses and checks every rule in `text`, in file order.
pub(super) fn rules(text: &str, path: &Path) -> Result<Vec<Rule>, RulesError> {
    let error = |span: Option<Range<usize>>, key: Option<&str>, reason| RulesError {
        path: path.to_path_buf(),
        line: span.map(|s| line_of(text, s.start)),
        key: key.map(str::to_owned),
        reason,
    };
    let syntax = |err: toml::de::Error| {
        let message = err.message().trim_end().to_owned();
        error(err.span(), None, RuleProblem::Syntax { message })
    };
    // First pass: only the top-level keys, so a misspelt `[[rules]]` is named with its line.
    let top: BTreeMap<Spanned<String>, IgnoredAny> = toml::from_str(text).map_err(syntax)?;
    let unknown = top.keys().filter(|k| k.get_ref() != "rule");
    if let Some(key) = unknown.min_by_key(|k| k.span().start) {
        let reason = RuleProblem::UnknownKey { expected: TOP_KEYS };
        return Err(error(Some(key.span()), Some(key.get_ref()), reason));
    }
    // Second pass: the syntax is known good, so any error is a wrong shape (`rule = 3`).
    let file: RawFile = toml::from_str(text).map_err(|err| {
        let span = err.span().or_else(|| top.keys().next().map(Spanned::span));
        let message = err.message().trim_end().to_owned();
        error(span, Some("rule"), RuleProblem::Shape { message })
    })?;
    let mut out = Vec::with_capacity(file.rule.len());
    for raw in file.rule {
        let header = raw.span();
        let compiled = rule(raw.into_inner(), header)
            .map_err(|(span, key, reason)| error(Some(span), key.as_deref(), reason))?;
        out.push(compiled);
    }
    Ok(out)
}

/// Where a rule is wrong: the span, the key at fault, and why.
type Fault = (Range<usize>, Option<String>, RuleProblem);

/// Checks one rule's keys in file order and compiles it.
fn rule(raw: RawRule, header: Range<usize>) -> Result<Rule, Fault> {
    let mut entries: Vec<_> = raw.into_iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut out = Rule {
        status: None,
        contains: Box::new([]),
        code: None,
        category: Category::Other,
        hard: None,
    };
    let mut category = None;
    for (key, value) in entries {
        let fault = |reason| (value.span(), Some(key.get_ref().clone()), reason);
        let value_ref = value.get_ref();
        match key.get_ref().as_str() {
            "status" => out.status = Some(status(value_ref).map_err(fault)?),
            "contains" => out.contains = contains(value_ref).map_err(fault)?,
            "code" => out.code = Some(code(value_ref).map_err(fault)?),
            "category" => category = Some(parse_category(value_ref).map_err(fault)?),
            "hard" => out.hard = Some(boolean(value_ref).map_err(fault)?),
            _ => {
                let expected = RULE_KEYS;
                let reason = RuleProblem::UnknownKey { expected };
                return Err((key.span(), Some(key.into_inner()), reason));
            }
        }
    }
    if out.status.is_none() && out.contains.is_empty() && out.code.is_none() {
        return Err((header, None, RuleProblem::NoCondition));
    }
    match category {
        Some(category) => out.category = category,
        None => {
            let key = Some("category".to_owned());
            return Err((header, key, RuleProblem::MissingCategory));
        }
    }
    Ok(out)
}

fn status(value: &Value) -> Result<StatusPattern, RuleProblem> {
    let text = value.as_str().ok_or(RuleProblem::WrongType {
        expected: "a string such as \"5.1.1\" or \"5.7.*\"",
    })?;
    let bad = || RuleProblem::BadStatus {
        value: text.to_owned(),
    };
    let parts: Vec<&str> = text.trim().split('.').collect();
    if parts.len() > 3 || (parts.len() < 3 && parts.last() != Some(&"*")) {
        return Err(bad());
    }
    let mut out = [None; 3];
    for (slot, part) in out.iter_mut().zip(&parts) {
        if *part != "*" {
            *slot = Some(parse_number(part).ok_or_else(bad)?);
        }
    }
    if out[0].is_some_and(|class| !matches!(class, 2 | 4 | 5)) {
        return Err(bad());
    }
    Ok(StatusPattern(out))
}

/// One string or an array of strings, each lowercased once here.
fn contains(value: &Value) -> Result<Box<[Box<str>]>, RuleProblem> {
    let wrong = || RuleProblem::WrongType {
        expected: "an array of strings",
    };
    let items = match value {
        Value::String(_) => std::slice::from_ref(value),
        Value::Array(items) => items.as_slice(),
        _ => return Err(wrong()),
    };
    if items.is_empty() {
        return Err(RuleProblem::WrongType {
            expected: "at least one string",
        });
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let text = item.as_str().ok_or_else(wrong)?;
        if text.trim().is_empty() {
            return Err(RuleProblem::EmptyPattern);
        }
        out.push(text.to_lowercase().into_boxed_str());
    }
    Ok(out.into())
}

fn code(value: &Value) -> Result<u16, RuleProblem> {
    let number = value.as_integer().ok_or(RuleProblem::WrongType {
        expected: "an integer reply code such as 550",
    })?;
    u16::try_from(number)
        .ok()
        .filter(|c| (200..=599).contains(c))
        .ok_or(RuleProblem::BadCode { value: number })
}

fn parse_category(value: &Value) -> Result<Category, RuleProblem> {
    let name = value.as_str().ok_or(RuleProblem::WrongType {
        expected: "a category name string",
    })?;
    Category::from_name(name).ok_or_else(|| RuleProblem::UnknownCategory {
        value: name.to_owned(),
    })
}

fn boolean(value: &Value) -> Result<bool, RuleProblem> {
    value.as_bool().ok_or(RuleProblem::WrongType {
        expected: "true or false",
    })
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}
