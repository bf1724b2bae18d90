//! Composing one recipient's message: render the templates with their data, build the MIME
//! message (mail-builder), then prepend the DKIM signature(s). The result goes to delivery.
//!
//! Every header value that can carry merge data is sanitised: CR, LF and other control
//! characters become spaces, so a merge value can never add or split a header.

use std::borrow::Cow;

use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::MessageBuilder;
use minijinja::Value;

use super::templates::{Part, Templates};
use super::ComposeError;
use crate::dkim::Signer;

/// An address with an optional display name (`"News" <news@example.com>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, if any; non-ASCII is encoded (RFC 2047) as needed.
    pub name: Option<String>,
    /// The address itself, `local@domain`.
    pub address: String,
}

/// The fixed parts of every message of a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSettings {
    /// The `From` mailbox; its domain also names the `Message-ID`.
    pub from: Mailbox,
    /// The `Reply-To` mailbox, if any.
    pub reply_to: Option<Mailbox>,
    /// Extra header fields added verbatim (after sanitising), for example `List-Unsubscribe`.
    pub extra_headers: Vec<(String, String)>,
}

/// A composed, signed message ready for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// The `Message-ID` without its angle brackets (`random@from-domain`).
    pub message_id: String,
    /// The whole message, CRLF line endings, DKIM signature(s) first.
    pub bytes: Vec<u8>,
}

/// Header fields the composer writes itself; extra headers may not repeat them.
const OWN_HEADERS: [&str; 10] = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "dkim-signature",
];

/// Renders, builds and signs messages for one campaign (or one A/B variant of it).
///
/// Shareable across composer threads (`Send + Sync`); templates are compiled once.
#[derive(Debug)]
pub struct Composer {
    templates: Templates,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    extra_headers: Vec<(String, String)>,
    id_domain: String,
    signer: Option<Signer>,
    /// [`Composer::check`] passed at construction, so `compose` need not repeat it.
    settings_ok: bool,
    /// Generate the text part from the rendered HTML when there is no text template.
    text_from_html: bool,
}

impl Composer {
    /// Builds a composer. Display names and extra header values are sanitised here; invalid
    /// addresses or header names are reported by [`Composer::compose`] via [`Composer::check`].
    pub fn new(
        templates: Templates,
        settings: MessageSettings,
        signer: Option<Signer>,
    ) -> Composer {
        let clean_box = |mailbox: Mailbox| Mailbox {
            name: mailbox
                .name
                .map(|name| sanitize(&name).into_owned())
                .filter(|name| !name.is_empty()),
            address: mailbox.address,
        };
        let from = clean_box(settings.from);
        let id_domain = from
            .address
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_ascii_lowercase())
            .unwrap_or_else(|| "localhost".to_owned());
        let mut composer = Composer {
            templates,
            reply_to: settings.reply_to.map(clean_box),
            extra_headers: settings
                .extra_headers
                .into_iter()
                .map(|(name, value)| (name, sanitize(&value).into_owned()))
                .collect(),
            from,
            id_domain,
            signer,
            settings_ok: false,
            text_from_html: false,
        };
        composer.settings_ok = composer.check().is_ok();
        composer
    }

    /// With `on`, a message whose templates have HTML but no text gets a text part generated
    /// from its rendered HTML (links as numbered references; see `compose::plain`). Default
    /// off: the message then has its HTML part only.
    pub fn text_from_html(mut self, on: bool) -> Composer {
        self.text_from_html = on;
        self
    }

    /// Checks the fixed settings (From, Reply-To, extra header names) once, before a send.
    pub fn check(&self) -> Result<(), ComposeError> {
        check_address("From", &self.from.address)?;
        if let Some(reply_to) = &self.reply_to {
            check_address("Reply-To", &reply_to.address)?;
        }
        self.extra_headers
            .iter()
            .try_for_each(|(name, _)| check_header_name(name))
    }

    /// The compiled templates (for [`Templates::variables`]).
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Composes and signs the message for `to`. `names` and `values` are the recipient's CSV
    /// columns (including `email`), available to the templates under the column names.
    pub fn compose(
        &self,
        to: &str,
        names: &[String],
        values: &[String],
    ) -> Result<Composed, ComposeError> {
        self.compose_with_headers(to, names, values, &[])
    }

    /// Like [`Composer::compose`], with extra per-recipient header fields (for example a
    /// personal `List-Unsubscribe`); their values are sanitised like every other header.
    pub fn compose_with_headers(
        &self,
        to: &str,
        names: &[String],
        values: &[String],
        headers: &[(&str, &str)],
    ) -> Result<Composed, ComposeError> {
        self.compose_message(to, (names, values, values.len()), headers, None)
    }

    /// Like [`Composer::compose_with_headers`], with the Message-ID's local part given (a
    /// signed token that ties a returned message to its recipient without an index); a
    /// random one is used when `None`. It must be a dot-atom (letters, digits, `.`, `-`).
    /// `fields` are the merge fields' names and values and the index from which on the
    /// values are URLs Volley built (tracking links): those go into HTML unescaped.
    pub fn compose_message(
        &self,
        to: &str,
        (names, values, trusted_from): (&[String], &[String], usize),
        headers: &[(&str, &str)],
        message_id_local: Option<&str>,
    ) -> Result<Composed, ComposeError> {
        self.check_inputs(to, (names, values), headers)?;
        let context = merge_context(names, values, trusted_from);
        let rendered = {
            let _render = tracing::debug_span!("compose.render").entered();
            self.render(names, &context)?
        };
        let (message_id, body) = {
            let _mime = tracing::debug_span!("compose.mime").entered();
            let message_id = self.message_id(message_id_local);
            let body = self.build(to, &message_id, rendered, headers);
            (message_id, body)
        };
        let bytes = self.sign(body)?;
        Ok(Composed { message_id, bytes })
    }

    /// The settings (once), the recipient's address, the extra header names, and merge field
    /// names and values that pair up.
    fn check_inputs(
        &self,
        to: &str,
        (names, values): (&[String], &[String]),
        headers: &[(&str, &str)],
    ) -> Result<(), ComposeError> {
        if !self.settings_ok {
            self.check()?;
        }
        check_address("To", to)?;
        headers
            .iter()
            .try_for_each(|(name, _)| check_header_name(name))?;
        if names.len() != values.len() {
            return Err(ComposeError::ColumnMismatch {
                names: names.len(),
                values: values.len(),
            });
        }
        Ok(())
    }

    /// The subject, text and HTML rendered with one recipient's merge fields.
    fn render(&self, names: &[String], context: &Value) -> Result<Rendered, ComposeError> {
        Ok(Rendered {
            subject: self
                .templates
                .render(Part::Subject, names, context)?
                .unwrap_or_default(),
            text: self.templates.render(Part::Text, names, context)?,
            html: self.templates.render(Part::Html, names, context)?,
        }
        .with_generated_text(self.text_from_html))
    }

    /// `local@id-domain`: the given local part when it is a dot-atom, else a random one.
    fn message_id(&self, local: Option<&str>) -> String {
        match local.filter(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }) {
            Some(local) => format!("{local}@{}", self.id_domain),
            None => format!("{:032x}@{}", rand::random::<u128>(), self.id_domain),
        }
    }

    /// The MIME message, unsigned: our header fields, the extra ones (sanitised), the bodies.
    fn build(
        &self,
        to: &str,
        message_id: &str,
        rendered: Rendered,
        headers: &[(&str, &str)],
    ) -> Vec<u8> {
        let mut builder = MessageBuilder::new()
            .from(mailbox_address(&self.from))
            .to(Address::new_address(None::<&str>, to))
            .subject(sanitize(rendered.subject.trim()).into_owned())
            .date(Date::now())
            .message_id(MessageId::new(message_id));
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(mailbox_address(reply_to));
        }
        for (name, value) in &self.extra_headers {
            builder = builder.header(name.as_str(), Raw::new(value.as_str()));
        }
        for (name, value) in headers {
            builder = builder.header(*name, Raw::new(sanitize(value)));
        }
        if let Some(text) = rendered.text {
            builder = builder.text_body(text);
        }
        if let Some(html) = rendered.html {
            builder = builder.html_body(html);
        }
        let mut body = Vec::with_capacity(4096);
        builder.serialize(&mut body);
        body
    }

    /// `body` with the DKIM signature(s) prepended, when the composer signs.
    fn sign(&self, body: Vec<u8>) -> Result<Vec<u8>, ComposeError> {
        let Some(signer) = &self.signer else {
            return Ok(body);
        };
        let signature = {
            let _sign = tracing::debug_span!("dkim.sign").entered();
            signer.sign(&body)?
        };
        let mut signed = Vec::with_capacity(signature.len() + body.len());
        signed.extend_from_slice(signature.as_bytes());
        signed.extend_from_slice(&body);
        Ok(signed)
    }
}

/// One recipient's rendered parts.
struct Rendered {
    subject: String,
    text: Option<String>,
    html: Option<String>,
}

impl Rendered {
    /// With `generate`, the text part made from the HTML when there is none.
    fn with_generated_text(mut self, generate: bool) -> Rendered {
        if generate && self.text.is_none() {
            let _plain = tracing::debug_span!("compose.plain").entered();
            self.text = self.html.as_deref().and_then(super::plain::from_html);
        }
        self
    }
}

/// The template context of one recipient: values from `trusted_from` on are URLs Volley
/// built (tracking links), which go into HTML unescaped.
fn merge_context(names: &[String], values: &[String], trusted_from: usize) -> Value {
    Value::from_iter(
        names
            .iter()
            .map(String::as_str)
            .zip(values.iter().enumerate().map(|(index, value)| {
                if index >= trusted_from {
                    Value::from_safe_string(value.clone())
                } else {
                    Value::from(value.as_str())
                }
            })),
    )
}

fn mailbox_address(mailbox: &Mailbox) -> Address<'_> {
    Address::new_address(mailbox.name.as_deref(), mailbox.address.as_str())
}

/// Replaces CR, LF and every other control character with a space, so the value stays on
/// one header line. Borrows when nothing needs replacing (the common case).
pub(crate) fn sanitize(value: &str) -> Cow<'_, str> {
    if value.chars().any(char::is_control) {
        Cow::Owned(
            value
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(value)
    }
}

/// A plain `local@domain` address: no whitespace, controls, brackets, quotes or commas.
fn check_address(field: &'static str, address: &str) -> Result<(), ComposeError> {
    let valid = address.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    }) && !address
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "<>\"(),;:\\[]".contains(c));
    if valid {
        Ok(())
    } else {
        Err(ComposeError::InvalidAddress {
            field,
            address: address.to_owned(),
        })
    }
}

/// A header field name: printable ASCII without ':' (RFC 5322 §2.2), not one we write.
fn check_header_name(name: &str) -> Result<(), ComposeError> {
    let reason = if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        "a header name is printable ASCII without spaces or ':'"
    } else if OWN_HEADERS.iter().any(|own| own.eq_ignore_ascii_case(name)) {
        "the composer writes this header itself"
    } else {
        return Ok(());
    };
    Err(ComposeError::InvalidHeader {
        name: name.to_owned(),
        reason,
    })
}
