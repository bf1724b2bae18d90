//! The OpenAPI document of the API, generated from the handlers' annotations (utoipa) and
//! served at `GET /api/openapi.json`. A copy is checked in at `api/openapi.json` (the
//! repository's root) so a change to the API shows in review; the test below fails when the
//! two differ. Regenerate it with
//! `VOLLEY_WRITE_OPENAPI=1 cargo test -p volley-engine --lib api::openapi`.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::problem::{FieldError, Problem};

/// The API's OpenAPI document: every path, its scopes and its problem answers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Volley API",
        description = "The HTTP API of `volley serve`: campaigns, their lists and reports, \
            events, the suppression list. Every path but `/api/health` and \
            `/api/openapi.json` needs `Authorization: Bearer <secret>` of a token with the \
            scope the path names (`read`, `send` or `admin`; `admin` implies both others). \
            Errors are RFC 9457 problem documents naming the field at fault.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        super::health,
        super::openapi_json,
        super::providers::ses,
        super::providers::sendgrid,
        super::providers::mailgun,
        super::providers::postmark,
        super::suppressions::list,
        super::suppressions::add,
        super::suppressions::remove,
        super::suppressions::import,
        super::campaigns::list,
        super::campaigns::status,
        super::campaigns::events,
        super::control::create,
        super::control::upload_list,
        super::control::start,
        super::control::pause,
        super::control::resume,
        super::control::cancel,
        super::reports::report_of,
        super::reports::decide,
        super::messages::submit,
        super::messages::status,
        super::metrics::metrics
    ),
    components(schemas(
        Problem,
        FieldError,
        super::Health,
        super::providers::Received,
        super::messages::MessageRequest,
        super::messages::Accepted,
        super::messages::MessageState,
        super::messages::Reply,
        super::control::NewCampaign,
        super::control::NewFile,
        super::control::Created,
        super::control::ListLoaded,
        super::control::InvalidRow,
        super::control::CampaignState
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "meta", description = "The server itself: health and this document."),
        (name = "providers", description = "Bounce and complaint webhooks of sending \
            providers (Amazon SES via SNS, SendGrid, Mailgun, Postmark), each authenticated \
            the provider's way instead of a bearer token."),
        (name = "campaigns", description = "Campaigns: their status and events."),
        (name = "suppressions", description = "The suppression list: addresses never mailed."),
        (name = "messages", description = "The transactional lane: single messages sent at priority 1, ahead of bulk traffic."),
    )
)]
pub struct ApiDoc;

/// Adds the bearer scheme every authenticated path refers to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some(
            "A secret whose SHA-256 is in the server's tokens file; its scopes decide what \
             it may do."
                .to_owned(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document as served and checked in: pretty JSON with a final line break.
pub fn document() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_checked_in_copy_is_the_generated_one() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/openapi.json");
        let generated = document();
        if std::env::var_os("VOLLEY_WRITE_OPENAPI").is_some() {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &generated).unwrap();
            return;
        }
        let checked_in = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            checked_in == generated,
            "api/openapi.json differs from the API in the code; regenerate it with \
             `VOLLEY_WRITE_OPENAPI=1 cargo test -p volley-engine --lib api::openapi` and \
             review the difference"
        );
    }

    #[test]
    fn every_operation_has_its_own_id() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        let mut ids = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str();
                ids.push(id.unwrap_or_else(|| panic!("{method} {path}: no operationId")));
            }
        }
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "operation ids repeat: {ids:?}");
    }

    #[test]
    fn every_path_but_the_open_ones_needs_a_token() {
        let doc: serde_json::Value = serde_json::from_str(&document()).unwrap();
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                // Provider webhooks authenticate the provider's way, not with a token.
                let open = path == "/api/health"
                    || path == "/api/openapi.json"
                    || path.starts_with("/api/providers/");
                let security = &operation["security"];
                let needs_none = security.as_array().is_some_and(|s| {
                    s.iter()
                        .all(|e| e.as_object().is_some_and(|o| o.is_empty()))
                });
                assert_eq!(needs_none, open, "{method} {path}: security {security}");
            }
        }
    }
}
