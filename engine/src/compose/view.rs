//! "View in browser": what the tracking server needs to re-render a recipient's message (see
//! `crate::tracking` `/v/TOKEN`), prepared with the campaign's messages. Each version keeps
//! its HTML template rewritten exactly as the sent one (the same tracked-link placeholders,
//! numbered the same), but without the open pixel: viewing the page is not an open.

use super::{links, template_variables, TemplateSource};
use crate::config::TrackingSettings;
use crate::store::ViewVersion;

/// Every field `[campaign] archive_fields` names must be a column of the list.
pub(crate) fn check_archive(
    recipients: &std::path::Path,
    archive: Option<&[(String, String)]>,
    columns: &[String],
) -> Result<(), super::ComposeError> {
    match archive
        .unwrap_or_default()
        .iter()
        .find(|(field, _)| !columns.contains(field))
    {
        Some((field, _)) => Err(super::ComposeError::ArchiveField {
            recipients: recipients.to_path_buf(),
            field: field.clone(),
            columns: columns.to_vec(),
        }),
        None => Ok(()),
    }
}

/// The version of one campaign version a browser shows: `html` is the template as written
/// (before tracking rewrote it), its links numbered from `first_link` as the sent message's
/// are; `text` is the text template as sent.
pub(crate) fn version(
    settings: &TrackingSettings,
    columns: &[String],
    subject: &str,
    (html, first_link): (Option<&TemplateSource>, usize),
    text: Option<&TemplateSource>,
) -> ViewVersion {
    let trackable = |url: &str| {
        settings.clicks
            && template_variables(url).is_some_and(|vars| vars.iter().all(|v| columns.contains(v)))
    };
    ViewVersion {
        subject: subject.to_owned(),
        html: html
            .map(|html| links::rewrite_html(&html.source, first_link, false, &trackable).source),
        text: text.map(|text| text.source.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::tracked::Tracking;

    #[test]
    fn the_view_template_numbers_links_as_the_message_and_has_no_pixel() {
        let settings = TrackingSettings {
            base_url: "https://t.acme.example".to_owned(),
            key: "a tracking key of enough bytes".to_owned().into(),
            key_file: None,
            opens: true,
            clicks: true,
            text_links: false,
            unsubscribe_mailto: None,
        };
        let mut tracking = Tracking::new(&settings);
        let first = TemplateSource {
            name: "a.html".to_owned(),
            source: r#"<a href="https://a.example/">a</a>"#.to_owned(),
        };
        let second = TemplateSource {
            name: "b.html".to_owned(),
            source: r#"<p>Hi {{ name }} <a href="https://b.example/">b</a></p></body>"#.to_owned(),
        };
        let mut sent = first.clone();
        tracking.rewrite(&settings, &[], None, Some(&mut sent));
        let at = tracking.links().len();
        let mut sent = second.clone();
        tracking.rewrite(&settings, &[], None, Some(&mut sent));
        let view = version(&settings, &[], "Hi", (Some(&second), at), None);
        let html = view.html.unwrap();
        assert_eq!(html, sent.source.replace(&pixel(&sent.source), ""));
        assert!(html.contains("{{ __volley_link_1 }}"), "{html}");
        assert!(!html.contains(links::OPEN_VARIABLE), "{html}");
    }

    #[test]
    fn archive_fields_must_be_columns_of_the_list() {
        let columns = ["email".to_owned(), "name".to_owned()];
        let named = |field: &str| vec![(field.to_owned(), "there".to_owned())];
        let list = std::path::Path::new("list.csv");
        assert!(check_archive(list, Some(&named("name")), &columns).is_ok());
        assert!(check_archive(list, None, &columns).is_ok());
        let error = check_archive(list, Some(&named("nmae")), &columns).unwrap_err();
        assert_eq!(
            error.to_string(),
            "[campaign] archive_fields: `nmae` is not a column of list.csv (its columns: email, name)"
        );
    }

    /// The pixel tag the message's template has.
    fn pixel(source: &str) -> String {
        let start = source.find("<img").unwrap();
        let end = start + source[start..].find('>').unwrap() + 1;
        source[start..end].to_owned()
    }
}
