//! Campaign templates: the subject line and the text and/or HTML bodies, compiled once with
//! minijinja and rendered per recipient by the [`super::Composer`].
//!
//! Rendering is strict: a variable the recipient data lacks is an error naming it, never an
//! empty string. HTML bodies auto-escape merge values; the subject and text body do not.

use std::collections::BTreeSet;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::ComposeError;

/// The top-level variables a template source uses, or `None` when it does not compile.
pub fn template_variables(source: &str) -> Option<BTreeSet<String>> {
    let env = Environment::new();
    let template = env.template_from_str(source).ok()?;
    Some(template.undeclared_variables(false).into_iter().collect())
}

/// One template's source text and the name used for it in messages (its file path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSource {
    /// Where the template came from (a file path), used in error messages.
    pub name: String,
    /// The template text (minijinja syntax).
    pub source: String,
}

/// Which part of a message a template renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    /// The name the template is registered under in the environment.
    fn key(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "text",
            Part::Html => "html",
        }
    }
}

/// One compiled template with what it needs from the recipient data.
#[derive(Debug)]
struct Compiled {
    part: Part,
    display_name: String,
    variables: Vec<String>,
}

/// A campaign's compiled subject, text and HTML templates.
///
/// Compile once with [`Templates::new`]; rendering reuses the compiled form.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    compiled: Vec<Compiled>,
}

impl Templates {
    /// Compiles the subject (an inline string) and the text and/or HTML bodies; at least one
    /// body is required. Syntax errors name the file (or "subject") and the line.
    pub fn new(
        subject: &str,
        text: Option<TemplateSource>,
        html: Option<TemplateSource>,
    ) -> Result<Templates, ComposeError> {
        if text.is_none() && html.is_none() {
            return Err(ComposeError::NoBody);
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_auto_escape_callback(|name| {
            if name == Part::Html.key() {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        let mut templates = Templates {
            env,
            compiled: Vec::with_capacity(3),
        };
        templates.add(Part::Subject, "subject".to_owned(), subject.to_owned())?;
        if let Some(text) = text {
            templates.add(Part::Text, text.name, text.source)?;
        }
        if let Some(html) = html {
            templates.add(Part::Html, html.name, html.source)?;
        }
        Ok(templates)
    }

    fn add(
        &mut self,
        part: Part,
        display_name: String,
        source: String,
    ) -> Result<(), ComposeError> {
        if let Err(err) = self.env.add_template_owned(part.key(), source) {
            return Err(ComposeError::Syntax {
                template: display_name,
                line: err.line(),
                reason: engine_reason(&err),
            });
        }
        let template = self
            .env
            .get_template(part.key())
            .map_err(|err| ComposeError::Syntax {
                template: display_name.clone(),
                line: err.line(),
                reason: engine_reason(&err),
            })?;
        let mut variables: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|name| self.env.globals().all(|(global, _)| global != name))
            .collect();
        variables.sort_unstable();
        self.compiled.push(Compiled {
            part,
            display_name,
            variables,
        });
        Ok(())
    }

    /// Every top-level variable the templates use, so a caller can refuse recipient data
    /// lacking one before sending anything.
    pub fn variables(&self) -> BTreeSet<String> {
        self.compiled
            .iter()
            .flat_map(|c| c.variables.iter().cloned())
            .collect()
    }

    /// True when an HTML body template is present.
    pub fn has_html(&self) -> bool {
        self.compiled.iter().any(|c| c.part == Part::Html)
    }

    /// True when a text body template is present.
    pub fn has_text(&self) -> bool {
        self.compiled.iter().any(|c| c.part == Part::Text)
    }

    /// Renders one part for a recipient, or `Ok(None)` when the campaign has no such part.
    /// `names` are the recipient's column names (used to name a missing variable).
    pub(crate) fn render(
        &self,
        part: Part,
        names: &[String],
        context: &Value,
    ) -> Result<Option<String>, ComposeError> {
        let Some(compiled) = self.compiled.iter().find(|c| c.part == part) else {
            return Ok(None);
        };
        if let Some(missing) = compiled
            .variables
            .iter()
            .find(|var| !names.iter().any(|name| name == *var))
        {
            return Err(ComposeError::MissingVariable {
                template: compiled.display_name.clone(),
                variable: missing.clone(),
            });
        }
        let render_error = |err: minijinja::Error| ComposeError::Render {
            template: compiled.display_name.clone(),
            line: err.line(),
            reason: engine_reason(&err),
        };
        let template = self.env.get_template(part.key()).map_err(render_error)?;
        template.render(context).map(Some).map_err(render_error)
    }
}

/// The engine's description of an error, without its internal template names.
fn engine_reason(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    }
}
