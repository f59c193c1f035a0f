//! A service client over replicas of which one is gone, one answers 503 or one never
//! answers: what is sent again to another replica, what is not, and which replicas
//! are left out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::routing::post;
use axum::Router;
use platform::balance::{Balancing, Endpoints};
use platform::client::{Retry, ServiceClient, NO_BODY};

/// A replica on a random port that answers every POST with `status`, counting calls.
async fn replica(status: StatusCode) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new().route(
        "/reservations",
        post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { status }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

/// A port where nothing listens any more.
async fn gone() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

async fn client(urls: &[&str], retry: Retry) -> ServiceClient {
    let endpoints =
        Endpoints::parse("estoque-service", &urls.join(","), Balancing::default()).unwrap();
    ServiceClient::new(endpoints, Duration::from_secs(2), 4, retry)
}

/// The URLs of the replicas the client leaves out now.
fn left_out(client: &ServiceClient) -> Vec<String> {
    let endpoints = client.endpoints();
    endpoints
        .all()
        .iter()
        .filter(|e| endpoints.is_ejected(e))
        .map(|e| format!("http://{}", e.authority))
        .collect()
}

#[tokio::test]
async fn idempotent_calls_reach_the_one_healthy_replica_and_the_others_are_left_out() {
    let closed = gone().await;
    let (busy, busy_calls) = replica(StatusCode::SERVICE_UNAVAILABLE).await;
    let (healthy, healthy_calls) = replica(StatusCode::OK).await;
    let client = client(&[&closed, &busy, &healthy], Retry::Idempotent).await;
    for _ in 0..6 {
        let answer = client
            .call(Method::POST, "/reservations", NO_BODY, "r", None)
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK);
    }
    assert_eq!(healthy_calls.load(Ordering::SeqCst), 6);
    // Once answered 503, the busy replica is left out: it is not called six times.
    assert_eq!(busy_calls.load(Ordering::SeqCst), 1);
    let out = left_out(&client);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out.contains(&closed) && out.contains(&busy), "{out:?}");
}

#[tokio::test]
async fn a_call_that_is_not_idempotent_is_sent_again_only_if_it_never_left() {
    let closed = gone().await;
    let (busy, busy_calls) = replica(StatusCode::SERVICE_UNAVAILABLE).await;
    let (healthy, healthy_calls) = replica(StatusCode::OK).await;

    // Nothing listens on the first: the call goes to the next replica.
    let unsent = client(&[&closed, &healthy], Retry::Unsent).await;
    let answer = unsent
        .call(Method::POST, "/reservations", NO_BODY, "r", None)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(healthy_calls.load(Ordering::SeqCst), 1);

    // The first answered 503: it may have acted, so its answer is the answer.
    let answered = client(&[&busy, &healthy], Retry::Unsent).await;
    let answer = answered
        .call(Method::POST, "/reservations", NO_BODY, "r", None)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy_calls.load(Ordering::SeqCst), 1);
    assert_eq!(healthy_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_replica_that_does_not_answer_in_time_is_left_out() {
    // Accepts connections (the kernel does) and never answers: a replica stalled on
    // its database, or behind a link that drops packets.
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stalled_url = format!("http://{}", stalled.local_addr().unwrap());
    let (healthy, healthy_calls) = replica(StatusCode::OK).await;
    let endpoints = Endpoints::parse(
        "estoque-service",
        &format!("{stalled_url},{healthy}"),
        Balancing::default(),
    )
    .unwrap();
    let client = ServiceClient::new(endpoints, Duration::from_millis(200), 4, Retry::Unsent);
    let mut timeouts = 0;
    for _ in 0..6 {
        match client
            .call(Method::POST, "/reservations", NO_BODY, "r", None)
            .await
        {
            Ok(answer) => assert_eq!(answer.status, StatusCode::OK),
            Err(platform::client::CallError::Timeout) => timeouts += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    // Round-robin would send three of six to the stalled replica: one timeout, then
    // it is left out.
    assert_eq!(timeouts, 1);
    assert_eq!(healthy_calls.load(Ordering::SeqCst), 5);
    let out = left_out(&client);
    assert_eq!(out, vec![stalled_url]);
    drop(stalled);
}
