//! `load smoke` against a tiny axum server standing in for the gateway: the requests it
//! sends (routes, bodies, `traceparent`), the thresholds, the summary file and the exit
//! codes of the binary.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Gateway {
    /// Whether orders ever reach `fulfilled`.
    fulfils: AtomicBool,
    /// Every request: method, path, traceparent.
    seen: Mutex<Vec<(String, String, String)>>,
    reads: AtomicU32,
}

impl Gateway {
    fn saw(&self, method: &str, path: &str, headers: &HeaderMap) {
        let traceparent = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        self.seen
            .lock()
            .unwrap()
            .push((method.into(), path.into(), traceparent));
    }
}

async fn products(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Json<Value> {
    gw.saw("GET", "/api/products", &headers);
    Json(json!([
        {"sku": "sku-espresso", "name": "Espresso", "unit_price_cents": 1200, "stock": 50},
        {"sku": "sku-scale", "name": "Scale", "unit_price_cents": 3000, "stock": 0}
    ]))
}

async fn create_order(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    gw.saw("POST", "/api/orders", &headers);
    let customer = body["customer_id"].as_str().unwrap_or_default();
    if customer.starts_with("fraud") {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            [(header::CONTENT_TYPE, "application/problem+json")],
            r#"{"type":"about:blank","status":422,"detail":"rejected by the fraud check"}"#,
        )
            .into_response();
    }
    assert_eq!(body["items"][0]["sku"], "sku-espresso");
    assert_eq!(body["items"][0]["quantity"], 2);
    (
        StatusCode::CREATED,
        Json(json!({"id": "order-1", "status": "accepted", "total_cents": 2400})),
    )
        .into_response()
}

async fn get_order(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Json<Value> {
    gw.saw("GET", "/api/orders/{id}", &headers);
    let reads = gw.reads.fetch_add(1, Ordering::SeqCst);
    if gw.fulfils.load(Ordering::SeqCst) && reads >= 1 {
        Json(
            json!({"id": id, "status": "fulfilled", "total_cents": 2400, "fulfilled_at": "2026-01-01T00:00:00Z"}),
        )
    } else {
        Json(json!({"id": id, "status": "accepted", "total_cents": 2400}))
    }
}

async fn start(fulfils: bool) -> (String, Arc<Gateway>) {
    let gw = Arc::new(Gateway::default());
    gw.fulfils.store(fulfils, Ordering::SeqCst);
    let app = Router::new()
        .route("/api/products", get(products))
        .route("/api/orders", post(create_order))
        .route("/api/orders/{id}", get(get_order))
        .with_state(gw.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, gw)
}

async fn run_binary(envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_load"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in envs {
        command.env(k, v);
    }
    command.output().await.unwrap()
}

fn summary_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("load-test-{}-{name}.json", std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_passes_and_every_request_carries_its_own_traceparent() {
    let (url, gw) = start(true).await;
    let path = summary_path("pass");
    let out = run_binary(
        &[("BASE_URL", &url)],
        &["smoke", "--summary-json", path.to_str().unwrap()],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");

    let seen = gw.seen.lock().unwrap().clone();
    let routes: Vec<(&str, &str)> = seen
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        routes,
        [
            ("GET", "/api/products"),
            ("POST", "/api/orders"),
            ("GET", "/api/orders/{id}"),
            ("GET", "/api/orders/{id}"),
            ("POST", "/api/orders"),
        ]
    );
    let mut trace_ids = HashSet::new();
    for (_, _, traceparent) in &seen {
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent:?}");
        assert_eq!((parts[0], parts[3]), ("00", "01"), "{traceparent}");
        assert_eq!((parts[1].len(), parts[2].len()), (32, 16), "{traceparent}");
        assert_ne!(parts[1], "0".repeat(32));
        trace_ids.insert(parts[1].to_string());
    }
    assert_eq!(trace_ids.len(), seen.len(), "a fresh trace id per request");

    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(summary["scenario"], "smoke");
    assert_eq!(summary["passed"], true);
    assert_eq!(summary["counters"]["orders_fulfilled"], 1);
    assert_eq!(summary["requests"]["GET /api/orders/{id}"]["count"], 2);
    assert_eq!(summary["requests"]["POST /api/orders"]["count"], 2);
    assert_eq!(summary["requests"]["POST /api/orders"]["failures"], 0);
    assert_eq!(
        summary["requests"]["POST /api/orders"]["statuses"]["422"],
        1
    );
    assert!(
        summary["requests"]["GET /api/products"]["p95_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let thresholds = summary["thresholds"].as_array().unwrap();
    assert_eq!(thresholds.len(), 3);
    assert!(
        thresholds.iter().all(|t| t["passed"] == true),
        "{thresholds:?}"
    );
    let checks = summary["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["fails"] == 0), "{checks:?}");
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "fraud order: problem+json body"),
        "{checks:?}"
    );
    assert!(stdout.contains("result: every threshold held"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_never_fulfilled_fails_the_run_and_names_its_trace() {
    let (url, gw) = start(false).await;
    let path = summary_path("fail");
    let out = run_binary(
        &[("BASE_URL", &url), ("FULFIL_TIMEOUT", "1s")],
        &["smoke", "--summary-json", path.to_str().unwrap()],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("threshold failed: orders_fulfilled count==1 (observed 0.0"),
        "{stderr}"
    );

    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(summary["passed"], false);
    let failed = summary["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "order: fulfilled within 1s")
        .expect("the fulfilment check");
    assert_eq!(failed["fails"], 1);
    // The failure names the trace of the last read, which the gateway received.
    let trace_id = failed["failures"][0]["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let seen = gw.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(_, p, tp)| p == "/api/orders/{id}" && tp.contains(&trace_id)),
        "{trace_id} not among {seen:?}"
    );
    assert!(stderr.contains(&trace_id), "{stderr}");
}

#[tokio::test]
async fn a_bad_setting_is_a_usage_error_naming_the_variable() {
    let out = run_binary(&[("LOAD_VUS", "many")], &["load"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LOAD_VUS=\"many\""));

    let out = run_binary(&[], &["chaos"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ADMIN_TOKEN"));

    let out = run_binary(&[], &["soak"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: load"));
}
