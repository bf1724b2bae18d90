//! A campaign's messages, prepared once before anything is sent: one composer per variant
//! (templates compiled, links rewritten for tracking, DKIM keys loaded, `Feedback-ID` set),
//! the recipient list's columns and the campaign's tracking.

use std::path::Path;
use std::sync::Arc;

use super::tracked::{compose_tracked, Tracking};
use super::transactional;
use super::Templates;
use super::{links, ComposeError, Composed, Composer, Mailbox, MessageSettings, TemplateSource};
use crate::config::{Address, CampaignSettings, DkimSettings, TemplateFile, MAIN_VARIANT};
use crate::dkim::Signer;

/// What a campaign sends, ready to compose for any recipient.
#[derive(Clone)]
pub(crate) struct CampaignMessages {
    /// One per variant, by index; never empty.
    composers: Vec<Arc<Composer>>,
    columns: Arc<Vec<String>>,
    tracking: Option<Arc<Tracking>>,
    /// What "view in browser" needs (tracked campaigns only).
    view: Option<Arc<crate::store::ViewMeta>>,
    /// The transactional lane's messages: rows are expanded by variant (see
    /// `transactional::expand`).
    transactional: bool,
}

/// One version of a campaign's message: the campaign's own, or a variant's overrides on it.
struct Version<'a> {
    id: &'a str,
    subject: &'a str,
    from_name: Option<&'a str>,
    text: Option<&'a TemplateFile>,
    html: Option<&'a TemplateFile>,
}

impl CampaignMessages {
    /// Loads the DKIM keys, compiles each version's templates (rewritten for tracking when
    /// the campaign is tracked) and checks that the list's `columns` hold every merge field
    /// the templates use.
    pub(crate) fn prepare(
        settings: &CampaignSettings,
        columns: Vec<String>,
    ) -> Result<CampaignMessages, ComposeError> {
        super::view::check_archive(&settings.recipients, settings.archive.as_deref(), &columns)?;
        let mut tracking = settings.tracking.as_ref().map(Tracking::new);
        let mut composers = Vec::new();
        let mut views = Vec::new();
        for version in versions(settings) {
            let (mut text, mut html) = (template(version.text), template(version.html));
            if let Some((tracking, tracking_settings)) =
                tracking.as_mut().zip(settings.tracking.as_ref())
            {
                let (written, first) = (html.clone(), tracking.links().len());
                tracking.rewrite(tracking_settings, &columns, text.as_mut(), html.as_mut());
                views.push(super::view::version(
                    tracking_settings,
                    &columns,
                    version.subject,
                    (written.as_ref(), first),
                    text.as_ref(),
                ));
            }
            let templates = Templates::new(version.subject, text, html)?;
            check_fields(
                &settings.recipients,
                &templates,
                &columns,
                tracking.is_some(),
            )?;
            composers.push(composer(settings, &version, templates)?);
        }
        let view = settings.tracking.as_ref().map(|t| {
            Arc::new(crate::store::ViewMeta {
                base_url: t.base_url.clone(),
                versions: views,
                archive: settings.archive.clone(),
            })
        });
        Ok(CampaignMessages {
            composers,
            columns: Arc::new(columns),
            tracking: tracking.map(Arc::new),
            view,
            transactional: false,
        })
    }

    /// The messages of the transactional lane from its campaign file: variant 0 renders the
    /// file's templates (all of whose fields a request's `data` must give, see
    /// [`CampaignMessages::required_fields`]), variants 1 to 3 put in a request's explicit
    /// content. Rows have the columns [`transactional::TX_COLUMNS`]. Tracked like any
    /// campaign: template links are rewritten, the pixel and the unsubscribe headers added;
    /// links in explicit content are left as they are (the click redirect only follows the
    /// campaign's own links).
    pub(crate) fn prepare_transactional(
        settings: &CampaignSettings,
    ) -> Result<CampaignMessages, ComposeError> {
        let mut tracking = settings.tracking.as_ref().map(Tracking::new);
        let main = versions(settings)
            .into_iter()
            .next()
            .ok_or(ComposeError::NoBody)?;
        let mut composers = Vec::new();
        let (mut text, mut html) = (template(main.text), template(main.html));
        let provided = Templates::new(main.subject, text.clone(), html.clone())?.variables();
        let provided: Vec<String> = provided.into_iter().collect();
        if let Some((tracking, tracking_settings)) =
            tracking.as_mut().zip(settings.tracking.as_ref())
        {
            tracking.rewrite(tracking_settings, &provided, text.as_mut(), html.as_mut());
        }
        let templates = Templates::new(main.subject, text, html)?;
        composers.push(composer(settings, &main, templates)?);
        for variant in [
            transactional::EXPLICIT_BOTH,
            transactional::EXPLICIT_TEXT,
            transactional::EXPLICIT_HTML,
        ] {
            let mut html = transactional::explicit_html(variant);
            if let Some((tracking, tracking_settings)) =
                tracking.as_mut().zip(settings.tracking.as_ref())
            {
                tracking.rewrite(tracking_settings, &[], None, html.as_mut());
            }
            let templates = transactional::with_html(variant, html)?;
            composers.push(composer(settings, &main, templates)?);
        }
        Ok(CampaignMessages {
            composers,
            columns: Arc::new(transactional::TX_COLUMNS.map(str::to_owned).to_vec()),
            tracking: tracking.map(Arc::new),
            view: None,
            transactional: true,
        })
    }

    /// The merge fields the templates of variant 0 use that a recipient's data must give
    /// (the tracking fields Volley fills in are left out).
    pub(crate) fn required_fields(&self) -> Vec<String> {
        self.composer(0)
            .templates()
            .variables()
            .into_iter()
            .filter(|name| {
                self.tracking.is_none()
                    || !(name.starts_with(links::PROVIDED_PREFIX)
                        || name == links::UNSUBSCRIBE_VARIABLE
                        || name == links::PREFERENCES_VARIABLE
                        || name == links::VIEW_VARIABLE)
            })
            .filter(|name| name != "email")
            .collect()
    }

    /// The recipient list's columns (merge fields).
    pub(crate) fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The campaign's tracking, when it is tracked.
    pub(crate) fn tracking(&self) -> Option<&Tracking> {
        self.tracking.as_deref()
    }

    /// What "view in browser" needs of this campaign, when it is tracked.
    pub(crate) fn view(&self) -> Option<&crate::store::ViewMeta> {
        self.view.as_deref()
    }

    /// The composer of variant `variant` (the first one for an unknown index).
    fn composer(&self, variant: u8) -> &Composer {
        // invariant: prepare() builds one composer per version, and there is always one
        self.composers
            .get(usize::from(crate::model::variant_index(variant)))
            .unwrap_or(&self.composers[0])
    }

    /// Composes the message of stored variant `variant` for `to` with the list row `values`,
    /// tracked as recipient `seq` of campaign `number` when the campaign is tracked.
    pub(crate) fn compose(
        &self,
        to: &str,
        values: &[String],
        (number, variant, seq): (u32, u8, u64),
        message_id_local: Option<&str>,
    ) -> Result<Composed, ComposeError> {
        let expanded;
        let (columns, values): (&[String], &[String]) = if self.transactional {
            expanded = transactional::expand(crate::model::variant_index(variant), values);
            (&expanded.0, &expanded.1)
        } else {
            (&self.columns, values)
        };
        compose_tracked(
            self.composer(variant),
            columns,
            self.tracking.as_deref(),
            to,
            values,
            (number, variant, seq),
            message_id_local,
        )
    }
}

/// The composer of one version with its compiled `templates`: DKIM keys loaded, From,
/// Reply-To and `Feedback-ID` set.
fn composer(
    settings: &CampaignSettings,
    version: &Version<'_>,
    templates: Templates,
) -> Result<Arc<Composer>, ComposeError> {
    let keys = settings
        .dkim
        .iter()
        .map(DkimSettings::load_key)
        .collect::<Result<Vec<_>, _>>()?;
    let signer = (!keys.is_empty()).then(|| Signer::new(keys));
    let message = message_settings(settings, version);
    let text_from_html = templates.has_html() && !templates.has_text();
    Ok(Arc::new(
        Composer::new(templates, message, signer).text_from_html(text_from_html),
    ))
}

/// From (with the version's sender name), Reply-To and `Feedback-ID` of one version.
fn message_settings(settings: &CampaignSettings, version: &Version<'_>) -> MessageSettings {
    let mut from = mailbox(&settings.from);
    if let Some(name) = version.from_name {
        from.name = Some(name.to_owned());
    }
    MessageSettings {
        from,
        reply_to: settings.reply_to.as_ref().map(mailbox),
        extra_headers: vec![(
            "Feedback-ID".to_owned(),
            format!(
                "{}:{}:volley:{}",
                settings.id, version.id, settings.from.domain
            ),
        )],
    }
}

/// The versions a campaign sends, by variant index.
fn versions(settings: &CampaignSettings) -> Vec<Version<'_>> {
    if settings.variants.is_empty() {
        return vec![Version {
            id: MAIN_VARIANT,
            subject: &settings.subject,
            from_name: None,
            text: settings.text.as_ref(),
            html: settings.html.as_ref(),
        }];
    }
    settings
        .variants
        .iter()
        .map(|v| Version {
            id: &v.id,
            subject: v.subject.as_deref().unwrap_or(&settings.subject),
            from_name: v.from_name.as_deref(),
            text: v.text.as_ref().or(settings.text.as_ref()),
            html: v.html.as_ref().or(settings.html.as_ref()),
        })
        .collect()
}

/// A template file as the template engine takes it.
fn template(file: Option<&TemplateFile>) -> Option<TemplateSource> {
    file.map(|t| TemplateSource {
        name: t.path.display().to_string(),
        source: t.source.clone(),
    })
}

/// Every merge field the templates use must be a column of the list (or a tracking field).
fn check_fields(
    recipients: &Path,
    templates: &Templates,
    columns: &[String],
    tracked: bool,
) -> Result<(), ComposeError> {
    let provided = |name: &str| {
        tracked
            && (name.starts_with(links::PROVIDED_PREFIX)
                || name == links::UNSUBSCRIBE_VARIABLE
                || name == links::PREFERENCES_VARIABLE
                || name == links::VIEW_VARIABLE)
    };
    let missing: Vec<String> = templates
        .variables()
        .into_iter()
        .filter(|name| !columns.iter().any(|c| c == name) && !provided(name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ComposeError::MissingFields {
        recipients: recipients.to_path_buf(),
        missing,
        columns: columns.to_vec(),
    })
}

fn mailbox(address: &Address) -> Mailbox {
    Mailbox {
        name: address.name.clone(),
        address: address.address.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(text: &str) -> Templates {
        let text = TemplateSource {
            name: "body.txt".to_owned(),
            source: text.to_owned(),
        };
        Templates::new("Hello {{ name }}", Some(text), None).unwrap()
    }

    #[test]
    fn a_merge_field_the_list_lacks_is_named_with_the_lists_columns() {
        let columns = ["email".to_owned(), "name".to_owned()];
        let error = check_fields(
            Path::new("list.csv"),
            &templates("{{ city }} and {{ plan }}"),
            &columns,
            false,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "list.csv: the templates use the fields `city`, `plan` that the list does not have \
             (its columns: email, name)"
        );
        let one = check_fields(
            Path::new("list.csv"),
            &templates("{{ city }}"),
            &columns,
            false,
        )
        .unwrap_err();
        assert!(
            one.to_string().contains("use the field `city` that"),
            "{one}"
        );
    }

    #[test]
    fn tracking_fields_count_as_provided_only_when_tracked() {
        let columns = ["email".to_owned(), "name".to_owned()];
        let body = templates("{{ unsubscribe_url }}");
        assert!(check_fields(Path::new("list.csv"), &body, &columns, true).is_ok());
        assert!(check_fields(Path::new("list.csv"), &body, &columns, false).is_err());
    }
}
