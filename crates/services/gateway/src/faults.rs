//! `/admin/faults` at the gateway: one place to see and switch the faults of every
//! component (each applies its own, see [`platform::faults`]), behind the admin key.
//! Mounted only when faults are enabled.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json as JsonBody, Router};
use platform::client::{Answer, CallError, NO_BODY};
use platform::extract::Json;
use platform::faults::{parse_fault, FaultState, FaultsAnswer, NewFault, DEFAULT_TTL};
use platform::request_id::RequestId;
use platform::ApiError;
use serde_json::json;

use crate::auth::{Access, Role};
use crate::routes::Backend;
use crate::state::Gateway;

pub fn routes(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/admin/faults", get(list))
        .route(
            "/admin/faults/{fault}",
            axum::routing::put(put).delete(delete),
        )
        .with_state(gateway)
}

fn backend_of(component: &str) -> Option<Backend> {
    Backend::ALL.into_iter().find(|b| b.name() == component)
}

/// Faults are switched by admins only (an API key or a token with the admin role).
async fn admin_only(gateway: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    gateway
        .auth
        .authorize(Access::Needs(Role::Admin), headers)
        .await
        .map(|_| ())
}

/// A component's refusal, passed on as it is: its status and its error body.
struct Refusal(StatusCode, serde_json::Value);

impl Refusal {
    fn of(backend: Backend, err: &CallError) -> Self {
        let err = err.to_api_error(backend.name());
        Refusal(err.status, err.body())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, JsonBody(self.1)).into_response()
    }
}

/// One component's answer parsed as `T`, or its refusal.
fn relay<T: serde::de::DeserializeOwned>(
    backend: Backend,
    answer: Result<Answer, CallError>,
) -> Result<T, Refusal> {
    match answer {
        Ok(answer) if answer.status.is_success() => {
            answer.json().map_err(|err| Refusal::of(backend, &err))
        }
        Ok(answer) => Err(Refusal(
            answer.status,
            serde_json::from_slice(&answer.body).unwrap_or_else(|_| json!({})),
        )),
        Err(err) => Err(Refusal::of(backend, &err)),
    }
}

/// Every fault of every component (as one replica of each reports them: a switch reaches
/// them all): the components that did not answer are listed apart.
async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    axum::Extension(request_id): axum::Extension<RequestId>,
) -> Result<Response, ApiError> {
    admin_only(&gateway, &headers).await?;
    let mut faults: Vec<FaultState> = Vec::new();
    let mut unreachable = Vec::new();
    for backend in Backend::ALL {
        let upstream = gateway.upstream(backend);
        let answer = upstream
            .probe
            .call(
                Method::GET,
                "/admin/faults",
                NO_BODY,
                request_id.as_str(),
                None,
            )
            .await;
        match relay::<FaultsAnswer>(backend, answer) {
            Ok(answer) => faults.extend(answer.faults),
            Err(_) => unreachable.push(backend.name()),
        }
    }
    Ok(JsonBody(json!({"faults": faults, "unreachable": unreachable})).into_response())
}

/// Applies one change to every replica of every owner of the fault, in order; the first
/// refusal is the answer (the value was checked here first, so owners refuse only when they are down
/// or have faults disabled).
async fn change(
    gateway: &Gateway,
    method: Method,
    name: &str,
    body: Option<&NewFault>,
    request_id: &str,
) -> Result<Response, ApiError> {
    let fault = parse_fault(name)?;
    if let Some(new) = body {
        let ttl = new
            .ttl_seconds
            .map(std::time::Duration::from_secs)
            .unwrap_or(DEFAULT_TTL);
        fault.check(new.value, ttl)?;
    }
    let path = format!("/admin/faults/{}", fault.as_str());
    let mut states: Vec<FaultState> = Vec::new();
    for owner in fault.owners() {
        let Some(backend) = backend_of(owner) else {
            continue;
        };
        // Every replica applies its own faults: the switch goes to each one known now.
        let answers = gateway
            .upstream(backend)
            .probe
            .call_each(method.clone(), &path, body, request_id)
            .await;
        let mut first = None;
        for (_, answer) in answers {
            match relay::<FaultState>(backend, answer) {
                Ok(state) => {
                    first.get_or_insert(state);
                }
                Err(refused) => return Ok(refused.into_response()),
            }
        }
        states.extend(first);
    }
    Ok((StatusCode::OK, JsonBody(json!({ "faults": states }))).into_response())
}

async fn put(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    axum::Extension(request_id): axum::Extension<RequestId>,
    Path(name): Path<String>,
    Json(new): Json<NewFault>,
) -> Result<Response, ApiError> {
    admin_only(&gateway, &headers).await?;
    change(
        &gateway,
        Method::PUT,
        &name,
        Some(&new),
        request_id.as_str(),
    )
    .await
}

async fn delete(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    axum::Extension(request_id): axum::Extension<RequestId>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin_only(&gateway, &headers).await?;
    change(&gateway, Method::DELETE, &name, None, request_id.as_str()).await
}
