//! Request bodies, bounded: a JSON body ([`JsonBody`]) is read up to `[api] max_body` bytes
//! (413 past it, before reading anything when `Content-Length` says so) and parsed with the
//! path of the field at fault in the 400 problem when it does not fit.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::problem::Problem;
use super::ApiState;

/// A JSON request body of type `T`, at most `[api] max_body` bytes.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<ApiState> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| {
                let v = v.to_ascii_lowercase();
                v.starts_with("application/json") || v.contains("+json")
            });
        if !json {
            return Err(Problem::bad_request(
                Some("Content-Type"),
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let limit = state.settings.max_body;
        let bytes = read_bounded(request.into_body(), limit, "max_body").await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses `bytes` as `T`, naming the path of the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let detail = inner.to_string();
        let at = |name: &str| match path.as_str() {
            "." | "?" => name.to_owned(),
            parent => format!("{parent}.{name}"),
        };
        // serde names a missing field in its message, not in the path.
        let missing = detail
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match (missing, path.as_str()) {
            (Some(name), _) => at(name),
            (None, "." | "?") => "body".to_owned(),
            (None, path) => path.to_owned(),
        };
        if inner.is_data() {
            Problem::bad_field(field, detail)
        } else {
            Problem::bad_request(Some(&field), format!("not valid JSON: {detail}"))
        }
    })
}

/// Reads all of `body`, refusing with 413 what is larger than `limit` bytes (the `[api]`
/// key `key`).
pub async fn read_bounded(body: Body, limit: u64, key: &str) -> Result<Vec<u8>, Problem> {
    let announced = axum::body::HttpBody::size_hint(&body).lower();
    if announced > limit {
        return Err(Problem::too_large(key, limit));
    }
    let mut body = body;
    let mut out = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
    while let Some(chunk) = next_chunk(&mut body).await? {
        if u64::try_from(out.len() + chunk.len()).unwrap_or(u64::MAX) > limit {
            return Err(Problem::too_large(key, limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The next piece of data of `body` (`None` at its end); trailers are skipped.
pub async fn next_chunk(body: &mut Body) -> Result<Option<axum::body::Bytes>, Problem> {
    use axum::body::HttpBody;
    loop {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)).await;
        match frame {
            None => return Ok(None),
            Some(Err(error)) => {
                return Err(Problem::bad_request(
                    Some("body"),
                    format!("the body could not be read: {error}"),
                ))
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        name: String,
        files: Vec<File>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct File {
        name: String,
        size: u32,
    }

    #[test]
    fn a_misfit_names_its_path() {
        for (text, field, status) in [
            (r#"{"name": 3, "files": []}"#, "name", 422),
            (
                r#"{"name": "a", "files": [{"name": "x", "size": 1}, {"name": "y", "size": -1}]}"#,
                "files[1].size",
                422,
            ),
            (r#"{"name": "a"}"#, "files", 422),
            (
                r#"{"name": "a", "files": [{"size": 1}]}"#,
                "files[0].name",
                422,
            ),
            (r#"[]"#, "body", 422),
            (r#"{"name": "a", "files": [], "colour": 1}"#, "colour", 422),
            (r#"{"name": "a", "#, "body", 400),
        ] {
            let problem = parse_json::<Example>(text.as_bytes()).unwrap_err();
            assert_eq!(problem.status, status, "{text}: {problem:?}");
            assert_eq!(problem.errors[0].field, field, "{text}: {problem:?}");
        }
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_refused() {
        let problem = read_bounded(Body::from(vec![b'x'; 2000]), 1000, "max_body")
            .await
            .unwrap_err();
        assert_eq!(problem.status, 413);
        assert!(problem.detail.unwrap().contains("max_body"));
        let ok = read_bounded(Body::from("{}"), 1000, "max_body")
            .await
            .unwrap();
        assert_eq!(ok, b"{}");
    }
}
