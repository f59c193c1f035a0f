//! The platform's OpenAPI document, served by the gateway: the services' public
//! operations, the gateway's own endpoints, and on every proxied operation the answers
//! the gateway itself may give.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::{Access, Role};
use crate::routes::Route;
use crate::state::Gateway;

pub async fn serve(State(gateway): State<Arc<Gateway>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        gateway.openapi.clone(),
    )
        .into_response()
}

/// The whole document: `api` (the services' public part) with the gateway's endpoints
/// and answers added, serialised once.
/// `protected`: API keys or bearer tokens guard the calls (401/403 are documented).
pub fn document(mut api: utoipa::openapi::OpenApi, protected: bool) -> Result<Vec<u8>, String> {
    api.merge(gateway_api());
    api.info.title = "Pedidos Veloz API".into();
    api.info.description = Some("The public API of Pedidos Veloz, served by api-gateway.".into());
    let mut document = serde_json::to_value(&api).map_err(|e| e.to_string())?;
    document_gateway_answers(&mut document, protected);
    serde_json::to_vec(&document).map_err(|e| e.to_string())
}

/// Adds to every operation of the document the answers the platform gives whatever
/// the operation: 400 for a malformed id, query or body, 413/415 for bodies, 429 from
/// the rate limits, 401/403 when API keys guard the call, and 502/503/504 when the
/// upstream is broken, down or slow. The services document their own answers; these
/// come from the gateway and the shared extractors.
fn document_gateway_answers(doc: &mut serde_json::Value, protected: bool) {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        })
    };
    let has_error_schema = doc.pointer("/components/schemas/ErrorBody").is_some();
    if !has_error_schema {
        if let Some(schemas) = doc
            .pointer_mut("/components/schemas")
            .and_then(|s| s.as_object_mut())
        {
            schemas.insert(
                "ErrorBody".into(),
                json!({"type": "object", "required": ["error", "code"],
                       "properties": {"error": {"type": "string"}, "code": {"type": "string"}}}),
            );
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(route) = Route::of(path) else {
            continue;
        };
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            let Ok(http_method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            let has_input = operation.get("parameters").is_some();
            let has_body = operation.get("requestBody").is_some();
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(|r| r.as_object_mut())
            else {
                continue;
            };
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description));
            };
            if has_input || has_body {
                add("400", "Invalid id, query parameter or body");
            }
            if has_body {
                add("413", "Body larger than the limit");
                add("415", "Body is not application/json");
            }
            add(
                "429",
                "Rate limited: retry after the Retry-After header's seconds",
            );
            add("502", "The upstream service answered something broken");
            add(
                "503",
                "The upstream service (or its database) is unavailable",
            );
            add("504", "The upstream service did not answer in time");
            if protected {
                if let Access::Needs(role) = route.access(&http_method, path) {
                    add(
                        "401",
                        "Credentials are required: an API key or a bearer token",
                    );
                    if role == Role::Admin {
                        add("403", "This call needs an admin");
                    }
                }
            }
        }
    }
}

/// The gateway's own endpoints, for the OpenAPI document.
fn gateway_api() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;

    #[derive(utoipa::ToSchema, serde::Serialize)]
    #[allow(dead_code)]
    struct Backends {
        pedidos: String,
        pagamentos: String,
        estoque: String,
    }

    #[derive(utoipa::ToSchema, serde::Serialize)]
    #[allow(dead_code)]
    struct GatewayHealth {
        /// `healthy` or `degraded`.
        status: String,
        service: String,
        backends: Backends,
    }

    #[utoipa::path(get, path = "/", tag = "api-gateway", responses((status = 200, description = "Service name, version and endpoints", body = Object),
        (status = 303, description = "A browser (Accept: text/html) is sent to the web console, /console")))]
    #[allow(dead_code)]
    fn root_doc() {}

    #[utoipa::path(get, path = "/health", tag = "api-gateway",
        responses((status = 200, description = "Every backend is healthy", body = GatewayHealth),
                  (status = 207, description = "Degraded: some backend is unhealthy or unreachable", body = GatewayHealth)))]
    #[allow(dead_code)]
    fn health_doc() {}

    #[utoipa::path(get, path = "/livez", tag = "api-gateway", responses((status = 200, description = "The process is up", body = Object)))]
    #[allow(dead_code)]
    fn livez_doc() {}

    #[utoipa::path(get, path = "/readyz", tag = "api-gateway",
        responses((status = 200, description = "Ready to serve", body = Object), (status = 503, description = "Draining", body = Object)))]
    #[allow(dead_code)]
    fn readyz_doc() {}

    #[utoipa::path(get, path = "/me", tag = "api-gateway",
        responses((status = 200, description = "Who the request's credentials (X-API-Key or Authorization: Bearer) make its caller", body = crate::me::Me),
                  (status = 401, description = "The credentials are not valid", body = platform::error::ErrorBody)))]
    #[allow(dead_code)]
    fn me_doc() {}

    #[derive(OpenApi)]
    #[openapi(
        paths(root_doc, health_doc, livez_doc, readyz_doc, me_doc),
        components(schemas(GatewayHealth, Backends, crate::me::Me))
    )]
    struct GatewayApi;

    GatewayApi::openapi()
}
