//! One submitted message, checked: `{"to", "data"}` (the lane's templates) or `{"to",
//! "subject", "text", "html"}` (explicit content). Every problem names its field.

use aws_lc_rs::digest::{digest, SHA256};
use serde_json::{Map, Value};

use crate::config::normalize_address;

/// Longest subject accepted, in bytes.
const MAX_SUBJECT: usize = 998;
/// Fields of `data` accepted at most.
const MAX_DATA_FIELDS: usize = 256;

/// A request's problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct FieldError {
    /// The field, as a JSON path (`to`, `data.name`).
    pub field: String,
    /// What is wrong with it.
    pub detail: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

/// What a message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The lane's templates, rendered with these merge fields (in name order).
    Data(Map<String, Value>),
    /// The content given: a subject and a text and/or HTML body.
    Explicit {
        /// The subject.
        subject: String,
        /// The text body.
        text: Option<String>,
        /// The HTML body.
        html: Option<String>,
    },
}

/// One message for the transactional lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The normalised address.
    pub to: String,
    /// Its domain.
    pub domain: String,
    /// What it says.
    pub content: Content,
}

impl Message {
    /// Reads a request body: an object with `to` and either `data` (an object of strings,
    /// numbers or booleans) or `subject` with `text` and/or `html`. Unknown fields are
    /// refused, so a misspelt one never goes unnoticed.
    pub fn from_json(body: &Value) -> Result<Message, Vec<FieldError>> {
        let Some(object) = body.as_object() else {
            return Err(vec![FieldError::new("", "the body must be a JSON object")]);
        };
        let mut errors = Vec::new();
        for name in object.keys() {
            if !["to", "data", "subject", "text", "html"].contains(&name.as_str()) {
                errors.push(FieldError::new(
                    name.as_str(),
                    "unknown field (expected to, data, subject, text, html)",
                ));
            }
        }
        let to = match object.get("to") {
            None => Err(FieldError::new("to", "missing: the recipient's address")),
            Some(Value::String(raw)) => normalize_address(raw)
                .map_err(|e| FieldError::new("to", format!("{raw:?} is not an address: {e}"))),
            Some(_) => Err(FieldError::new("to", "must be a string")),
        };
        let content = content(object);
        match (to, content) {
            (Ok((to, domain)), Ok(content)) if errors.is_empty() => Ok(Message {
                to,
                domain,
                content,
            }),
            (to, content) => {
                errors.extend(to.err());
                errors.extend(content.err().into_iter().flatten());
                Err(errors)
            }
        }
    }

    /// Checks that templated content gives every field in `required`.
    pub(crate) fn check_fields(&self, required: &[String]) -> Result<(), super::SubmitError> {
        let Content::Data(data) = &self.content else {
            return Ok(());
        };
        let missing: Vec<FieldError> = required
            .iter()
            .filter(|name| !data.contains_key(*name))
            .map(|name| {
                FieldError::new(
                    format!("data.{name}"),
                    "missing: the lane's templates use it",
                )
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(super::SubmitError::Invalid(missing))
        }
    }

    /// The row's values, in the columns `email, data, subject, text, html`.
    pub(crate) fn values(&self) -> Vec<String> {
        match &self.content {
            Content::Data(data) => vec![
                self.to.clone(),
                Value::Object(data.clone()).to_string(),
                String::new(),
                String::new(),
                String::new(),
            ],
            Content::Explicit {
                subject,
                text,
                html,
            } => vec![
                self.to.clone(),
                String::new(),
                subject.clone(),
                text.clone().unwrap_or_default(),
                html.clone().unwrap_or_default(),
            ],
        }
    }

    /// The variant of the lane's messages this one is.
    pub(crate) fn variant(&self) -> u8 {
        use crate::compose::transactional as v;
        match &self.content {
            Content::Data(_) => v::TEMPLATED,
            Content::Explicit {
                text: Some(_),
                html: Some(_),
                ..
            } => v::EXPLICIT_BOTH,
            Content::Explicit { html: None, .. } => v::EXPLICIT_TEXT,
            Content::Explicit { .. } => v::EXPLICIT_HTML,
        }
    }

    /// SHA-256 of the message's address and content (what an idempotency key is tied to).
    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        let text = serde_json::json!([self.to, self.values()]).to_string();
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, text.as_bytes()).as_ref());
        out
    }
}

/// The content of a request: `data`, or `subject` with `text` and/or `html`.
fn content(object: &Map<String, Value>) -> Result<Content, Vec<FieldError>> {
    let explicit = ["subject", "text", "html"]
        .iter()
        .any(|k| object.contains_key(*k));
    match (object.get("data"), explicit) {
        (Some(_), true) => Err(vec![FieldError::new(
            "data",
            "give either data (the lane's templates) or subject with text and/or html, not both",
        )]),
        (Some(data), false) => data_fields(data).map(Content::Data),
        (None, true) => explicit_content(object),
        (None, false) => Err(vec![FieldError::new(
            "data",
            "missing: give data (the lane's templates) or subject with text and/or html",
        )]),
    }
}

fn data_fields(data: &Value) -> Result<Map<String, Value>, Vec<FieldError>> {
    let Some(fields) = data.as_object() else {
        return Err(vec![FieldError::new("data", "must be an object")]);
    };
    if fields.len() > MAX_DATA_FIELDS {
        return Err(vec![FieldError::new(
            "data",
            format!("has {} fields; at most {MAX_DATA_FIELDS}", fields.len()),
        )]);
    }
    let errors: Vec<FieldError> = fields
        .iter()
        .filter(|(_, v)| !(v.is_string() || v.is_number() || v.is_boolean()))
        .map(|(k, _)| FieldError::new(format!("data.{k}"), "must be a string, number or boolean"))
        .collect();
    if errors.is_empty() {
        Ok(fields.clone())
    } else {
        Err(errors)
    }
}

fn explicit_content(object: &Map<String, Value>) -> Result<Content, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut text_of = |name: &str| match object.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.push(FieldError::new(name, "must be a string"));
            None
        }
    };
    let subject = text_of("subject");
    let text = text_of("text");
    let html = text_of("html");
    match &subject {
        None => errors.push(FieldError::new("subject", "missing")),
        Some(s) if s.len() > MAX_SUBJECT => errors.push(FieldError::new(
            "subject",
            format!("is {} bytes; at most {MAX_SUBJECT}", s.len()),
        )),
        Some(_) => {}
    }
    if text.is_none() && html.is_none() && errors.is_empty() {
        errors.push(FieldError::new("text", "give text, html or both"));
    }
    match subject {
        Some(subject) if errors.is_empty() => Ok(Content::Explicit {
            subject,
            text,
            html,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(body: Value) -> Vec<String> {
        Message::from_json(&body)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_templated_and_an_explicit_message_are_read() {
        let m =
            Message::from_json(&json!({"to": " Ann@B.Example ", "data": {"name": "Ann", "n": 2}}))
                .unwrap();
        assert_eq!(
            (m.to.as_str(), m.domain.as_str()),
            ("Ann@b.example", "b.example")
        );
        assert_eq!(m.variant(), crate::compose::transactional::TEMPLATED);
        let m =
            Message::from_json(&json!({"to": "a@b.example", "subject": "S", "html": "<p>x</p>"}))
                .unwrap();
        assert_eq!(m.variant(), crate::compose::transactional::EXPLICIT_HTML);
        assert_eq!(m.values()[4], "<p>x</p>");
    }

    #[test]
    fn each_problem_names_its_field() {
        assert_eq!(fields(json!({"data": {}})), ["to"]);
        assert_eq!(fields(json!({"to": "nobody", "data": {}})), ["to"]);
        assert_eq!(fields(json!({"to": "a@b.example"})), ["data"]);
        assert_eq!(
            fields(json!({"to": "a@b.example", "data": {"x": [1]}})),
            ["data.x"]
        );
        assert_eq!(
            fields(json!({"to": "a@b.example", "text": "t"})),
            ["subject"]
        );
        assert_eq!(
            fields(json!({"to": "a@b.example", "subject": "s"})),
            ["text"]
        );
        assert_eq!(
            fields(json!({"to": "a@b.example", "data": {}, "subject": "s"})),
            ["data"]
        );
        assert_eq!(
            fields(json!({"to": "a@b.example", "data": {}, "cc": "x"})),
            ["cc"]
        );
        assert_eq!(fields(json!([1])), [""]);
    }

    #[test]
    fn missing_template_fields_are_named_and_the_fingerprint_follows_the_content() {
        let m = Message::from_json(&json!({"to": "a@b.example", "data": {"name": "A"}})).unwrap();
        let error = m
            .check_fields(&["name".to_owned(), "code".to_owned()])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the message is invalid: data.code: missing: the lane's templates use it"
        );
        let other =
            Message::from_json(&json!({"to": "a@b.example", "data": {"name": "B"}})).unwrap();
        assert_ne!(m.fingerprint(), other.fingerprint());
        assert_eq!(m.fingerprint(), m.clone().fingerprint());
    }
}
