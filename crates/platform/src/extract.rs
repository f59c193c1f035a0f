//! Request extractors whose rejections are the platform's JSON errors (SPEC section 2),
//! never axum's plain-text ones.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON object body. Malformed JSON and wrong types are 400 with the path of the
/// offending field; a JSON value that is not an object (`[5]`, `5`, `"x"`, `true`,
/// `null`) is 400 `invalid_body`; a body over the limit is 413; a non-JSON content
/// type is 415. Every body of the API is an object: serde alone would read a struct
/// from an array of its fields in order (`[5]` as `{"quantity": 5}`).
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !has_json_content_type(&req) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        require_object(&bytes)?;
        parse_json(&bytes).map(Json)
    }
}

/// Refuses a well-formed JSON document whose top level is not an object; anything
/// else (an object, or malformed JSON) is left to the parser to judge.
pub fn require_object(bytes: &[u8]) -> Result<(), ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, None | Some(b'{')) {
        return Ok(());
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        return Ok(());
    }
    let kind = match first {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    };
    Err(ApiError::bad_request(
        "invalid_body",
        format!("the body must be a JSON object, not {kind}"),
    ))
}

/// Parses a JSON document into `T`, naming the field that failed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            let field = if path == "." { String::new() } else { path };
            let message = if field.is_empty() {
                format!("invalid body: {inner}")
            } else {
                format!("invalid field '{field}': {inner}")
            };
            ApiError::bad_request("invalid_field", strip_position(&message)).with("field", field)
        } else {
            ApiError::bad_request("invalid_json", format!("malformed JSON: {inner}"))
        }
    })?;
    de.end()
        .map_err(|err| ApiError::bad_request("invalid_json", format!("malformed JSON: {err}")))?;
    Ok(value)
}

/// serde_json appends " at line 1 column 42" to data errors; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn has_json_content_type(req: &Request) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is larger than the limit",
        )
    } else {
        ApiError::bad_request("invalid_body", "could not read the request body")
    }
}

/// Query string parameters; unknown parameters are ignored, bad values are 400.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query).map(Query).map_err(|err| {
            ApiError::bad_request("invalid_query", format!("invalid query string: {err}"))
        })
    }
}

/// The numeric id in a path such as `/items/{id}`; anything but an integer is 400.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::bad_request("invalid_id", "invalid id in the path"))?;
        raw.parse::<i64>().map(Id).map_err(|_| {
            ApiError::bad_request("invalid_id", format!("'{raw}' is not a valid id"))
                .with("field", "id")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::require_object;

    #[test]
    fn only_objects_are_bodies() {
        for body in ["[5]", " 5", "\"x\"", "true", "null", "[]", "-1.5"] {
            let err = require_object(body.as_bytes()).unwrap_err();
            assert_eq!(
                (err.status.as_u16(), err.code),
                (400, "invalid_body"),
                "{body}"
            );
        }
        // Objects, and what the parser will call malformed, pass through.
        for body in ["{}", " {\"a\":1}", "", "{not json", "[1,", "nul"] {
            assert!(require_object(body.as_bytes()).is_ok(), "{body}");
        }
    }
}
