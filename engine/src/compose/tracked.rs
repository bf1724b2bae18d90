//! Tracking in each message: the open pixel, every rewritten link and the one-click
//! unsubscribe URL carry a token signed with the campaign's key (see `crate::tracking`), and
//! the `List-Unsubscribe` and `List-Unsubscribe-Post` header fields (RFC 8058) name the same
//! URL (and a mailto address when one is configured).

use secrecy::ExposeSecret;

use super::{links, template_variables, ComposeError, Composed, Composer, TemplateSource};
use crate::config::TrackingSettings;
use crate::tracking::{Token, TokenKey, TokenKind};

/// What a tracked campaign puts in each message: tokens signed with its key for the open
/// pixel, each rewritten link and the unsubscribe URL.
pub(crate) struct Tracking {
    key: TokenKey,
    base_url: String,
    links: Vec<String>,
    opens: bool,
    unsubscribe_mailto: Option<String>,
}

/// One message's tracking: template fields (names and values) and header fields.
pub(crate) struct TrackedFields {
    pub(crate) names: Vec<String>,
    pub(crate) values: Vec<String>,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Tracking {
    /// The tracking of a campaign with its key and URLs; its links are filled in as each
    /// variant's templates are rewritten ([`Tracking::rewrite`]).
    pub(crate) fn new(settings: &TrackingSettings) -> Tracking {
        Tracking {
            key: TokenKey::new(settings.key.expose_secret().as_bytes()),
            base_url: settings.base_url.clone(),
            links: Vec::new(),
            opens: settings.opens,
            unsubscribe_mailto: settings.unsubscribe_mailto.clone(),
        }
    }

    /// The tracked links, by index, as written in the templates.
    pub(crate) fn links(&self) -> &[String] {
        &self.links
    }

    /// The fingerprint of the key the tokens are signed with.
    pub(crate) fn key_fingerprint(&self) -> String {
        self.key.fingerprint()
    }

    /// Rewrites one version's templates for tracking: links (when `clicks`; text links too
    /// with `text_links`) become placeholders numbered after those already in the link table
    /// (one table for every variant), and the HTML gets the open pixel (when `opens`). A link
    /// is tracked only when it uses nothing but the list's own fields.
    pub(crate) fn rewrite(
        &mut self,
        settings: &TrackingSettings,
        columns: &[String],
        text: Option<&mut TemplateSource>,
        html: Option<&mut TemplateSource>,
    ) {
        let trackable = |url: &str| {
            settings.clicks
                && template_variables(url)
                    .is_some_and(|vars| vars.iter().all(|v| columns.contains(v)))
        };
        if let Some(html) = html {
            let rewritten =
                links::rewrite_html(&html.source, self.links.len(), settings.opens, &trackable);
            html.source = rewritten.source;
            self.links.extend(rewritten.links);
        }
        if let Some(text) = text.filter(|_| settings.text_links) {
            let rewritten = links::rewrite_text(&text.source, self.links.len(), &trackable);
            text.source = rewritten.source;
            self.links.extend(rewritten.links);
        }
    }

    /// The template fields and header fields of one recipient's message.
    pub(crate) fn fields(&self, campaign: u32, variant: u8, seq: u64) -> TrackedFields {
        let token = |kind, link| {
            self.key.encode(&Token {
                kind,
                campaign,
                variant,
                seq,
                link,
            })
        };
        let mut names = Vec::with_capacity(self.links.len() + 3);
        let mut values = Vec::with_capacity(self.links.len() + 3);
        for index in 0..self.links.len() {
            names.push(links::link_variable(index));
            let link = u16::try_from(index).unwrap_or(u16::MAX);
            values.push(format!(
                "{}/c/{}",
                self.base_url,
                token(TokenKind::Click, link)
            ));
        }
        if self.opens {
            names.push(links::OPEN_VARIABLE.to_owned());
            values.push(format!(
                "{}/o/{}.gif",
                self.base_url,
                token(TokenKind::Open, 0)
            ));
        }
        names.push(links::VIEW_VARIABLE.to_owned());
        values.push(format!("{}/v/{}", self.base_url, token(TokenKind::View, 0)));
        let unsubscribe = format!("{}/u/{}", self.base_url, token(TokenKind::Unsubscribe, 0));
        names.push(links::UNSUBSCRIBE_VARIABLE.to_owned());
        values.push(unsubscribe.clone());
        names.push(links::PREFERENCES_VARIABLE.to_owned());
        values.push(format!(
            "{}/p/{}",
            self.base_url,
            token(TokenKind::Preferences, 0)
        ));
        TrackedFields {
            names,
            values,
            headers: self.unsubscribe_headers(&unsubscribe),
        }
    }

    /// `List-Unsubscribe` (the one-click URL, and the mailto address when configured) and
    /// `List-Unsubscribe-Post` (RFC 8058).
    fn unsubscribe_headers(&self, unsubscribe: &str) -> Vec<(&'static str, String)> {
        let list_unsubscribe = match &self.unsubscribe_mailto {
            Some(mailto) => format!("<{unsubscribe}>, <mailto:{mailto}?subject=unsubscribe>"),
            None => format!("<{unsubscribe}>"),
        };
        vec![
            ("List-Unsubscribe", list_unsubscribe),
            (
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".to_owned(),
            ),
        ]
    }
}

/// Composes one message of one variant with its tracking fields and headers, when the
/// campaign is tracked.
pub(crate) fn compose_tracked(
    composer: &Composer,
    columns: &[String],
    tracking: Option<&Tracking>,
    to: &str,
    values: &[String],
    (number, variant, seq): (u32, u8, u64),
    message_id_local: Option<&str>,
) -> Result<Composed, ComposeError> {
    let Some(tracking) = tracking else {
        return composer.compose_message(
            to,
            (columns, values, values.len()),
            &[],
            message_id_local,
        );
    };
    let fields = tracking.fields(number, variant, seq);
    let mut names = columns.to_vec();
    names.extend(fields.names);
    let mut all = values.to_vec();
    all.extend(fields.values);
    let headers: Vec<(&str, &str)> = fields
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    composer.compose_message(to, (&names, &all, values.len()), &headers, message_id_local)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a tracking key of enough bytes";

    fn settings(mailto: Option<&str>) -> TrackingSettings {
        TrackingSettings {
            base_url: "https://t.acme.example".to_owned(),
            key: KEY.to_owned().into(),
            key_file: None,
            opens: true,
            clicks: true,
            text_links: false,
            unsubscribe_mailto: mailto.map(str::to_owned),
        }
    }

    fn source(text: &str) -> TemplateSource {
        TemplateSource {
            name: "t.html".to_owned(),
            source: text.to_owned(),
        }
    }

    /// The token at the end of `url` after `prefix`, decoded with the campaign's key.
    fn token(url: &str, prefix: &str) -> Token {
        let text = url.strip_prefix(prefix).unwrap().trim_end_matches(".gif");
        TokenKey::new(KEY.as_bytes()).decode(text).unwrap()
    }

    #[test]
    fn each_link_the_pixel_and_the_unsubscribe_url_carry_the_recipients_token() {
        let settings = settings(None);
        let mut tracking = Tracking::new(&settings);
        let mut html = source(r#"<a href="https://acme.example/a">a</a></body>"#);
        tracking.rewrite(&settings, &[], None, Some(&mut html));
        assert_eq!(tracking.links(), ["https://acme.example/a"]);
        let fields = tracking.fields(7, 1, 42);
        assert_eq!(
            fields.names,
            [
                links::link_variable(0),
                links::OPEN_VARIABLE.to_owned(),
                links::VIEW_VARIABLE.to_owned(),
                links::UNSUBSCRIBE_VARIABLE.to_owned(),
                links::PREFERENCES_VARIABLE.to_owned()
            ]
        );
        let click = token(&fields.values[0], "https://t.acme.example/c/");
        assert_eq!(
            (
                click.kind,
                click.campaign,
                click.variant,
                click.seq,
                click.link
            ),
            (TokenKind::Click, 7, 1, 42, 0)
        );
        assert_eq!(
            token(&fields.values[1], "https://t.acme.example/o/").kind,
            TokenKind::Open
        );
        assert_eq!(
            token(&fields.values[2], "https://t.acme.example/v/").kind,
            TokenKind::View
        );
        assert_eq!(
            token(&fields.values[3], "https://t.acme.example/u/").kind,
            TokenKind::Unsubscribe
        );
        assert_eq!(
            token(&fields.values[4], "https://t.acme.example/p/").kind,
            TokenKind::Preferences
        );
    }

    #[test]
    fn list_unsubscribe_names_the_one_click_url_and_the_mailto_when_configured() {
        for (mailto, expected_tail) in [
            (None, ">".to_owned()),
            (
                Some("unsub@acme.example"),
                ">, <mailto:unsub@acme.example?subject=unsubscribe>".to_owned(),
            ),
        ] {
            let tracking = Tracking::new(&settings(mailto));
            let fields = tracking.fields(1, 0, 1);
            let unsubscribe = &fields.values[fields.values.len() - 2];
            assert_eq!(
                fields.headers,
                [
                    ("List-Unsubscribe", format!("<{unsubscribe}{expected_tail}")),
                    (
                        "List-Unsubscribe-Post",
                        "List-Unsubscribe=One-Click".to_owned()
                    ),
                ]
            );
        }
    }

    #[test]
    fn links_built_from_other_than_the_lists_fields_stay_untracked() {
        let settings = settings(None);
        let mut tracking = Tracking::new(&settings);
        let mut html = source(
            r#"<a href="https://acme.example/{{ id }}">mine</a><a href="https://acme.example/{{ item }}">loop</a>"#,
        );
        tracking.rewrite(&settings, &["id".to_owned()], None, Some(&mut html));
        assert_eq!(tracking.links(), ["https://acme.example/{{ id }}"]);
        assert!(html.source.contains("https://acme.example/{{ item }}"));
    }
}
