//! `alert-webhook`: the demo's Alertmanager webhook receiver. Prometheus evaluates the
//! alerting rules, Alertmanager groups the alerts and posts each notification here, and this
//! receiver keeps every one as it was received (plus a `received_at` timestamp), so the
//! stack test and a person can see which alerts fired and resolved, without a mail server or
//! a chat service.
//!
//! | Route | Answer |
//! |---|---|
//! | `POST /alerts` | Alertmanager's webhook JSON (`version` "4"): kept, 200 |
//! | `GET /alerts` | every notification kept so far, oldest first, as a JSON array |
//! | `GET /healthz`, `GET /readyz` | 200 |
//!
//! | Variable | Default | |
//! |---|---|---|
//! | `PORT` | `9097` | listening port; `0` takes a free one |
//! | `LISTEN_HOST` | `0.0.0.0` | listening address |
//! | `ALERT_WEBHOOK_DIR` | unset | also append each notification to `notifications.jsonl` there |
//!
//! Each notification is logged as one JSON line on stdout (its status and each alert's name
//! and status). Malformed JSON is a 400, a body that is not a notification a 422, a body over
//! 1 MiB or of more than [`MAX_JSON_VALUES`] values a 413, each with an RFC 9457
//! problem+json body. Memory is bounded: the last [`MAX_NOTIFICATIONS`] notifications, and no
//! more than [`MAX_STORED_BYTES`] of them; a body is counted before it is parsed into a tree.
#![forbid(unsafe_code)]

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, State, rejection::BytesRejection},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use http_body::{Frame, SizeHint};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};
use std::{
    cell::Cell,
    collections::VecDeque,
    convert::Infallible,
    future::Future,
    io::Write as _,
    path::PathBuf,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{SystemTime, UNIX_EPOCH},
};

/// The port Alertmanager's configuration posts to.
pub const DEFAULT_PORT: u16 = 9097;
/// The largest body `POST /alerts` accepts (a notification of a few hundred alerts is far
/// smaller).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// The most JSON values (objects, arrays, strings, numbers, ...) a body may hold. Parsed, a
/// value takes 32 bytes or more and an object far more, so a 1 MiB body of tiny values
/// (`[0,0,0,...]`) would take tens of MiB as a tree. A notification has about 15 values per
/// alert: this is some 500 alerts in one notification, far more than the demo's rules group.
pub const MAX_JSON_VALUES: usize = 8_192;
/// How many notifications `GET /alerts` keeps: the oldest are dropped first.
pub const MAX_NOTIFICATIONS: usize = 10_000;
/// How many bytes of notifications (compact JSON) are kept at most, whatever their number:
/// the container has 16 MiB. Alertmanager's notification of one alert is about 1 KiB, so
/// this bound, not [`MAX_NOTIFICATIONS`], is the one such notifications meet first (after
/// some 4500 of them; 8 MiB resident then, release build).
pub const MAX_STORED_BYTES: usize = 4 << 20;
/// How many alerts the log line of a notification names; the rest are counted.
const LOGGED_ALERTS: usize = 20;
/// The file in `ALERT_WEBHOOK_DIR` that notifications are appended to, one JSON per line.
pub const NOTIFICATIONS_FILE: &str = "notifications.jsonl";

/// The settings, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `LISTEN_HOST`: an IP address or a host name.
    pub host: String,
    /// `PORT`: 0 asks the kernel for a free port.
    pub port: u16,
    /// `ALERT_WEBHOOK_DIR`: where `notifications.jsonl` is appended to, if anywhere.
    pub dir: Option<PathBuf>,
}

impl Config {
    /// The settings from the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings from `lookup`; an empty value counts as unset. The error names the
    /// variable that is wrong.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let port = match get("PORT") {
            None => DEFAULT_PORT,
            Some(value) => value.trim().parse().map_err(|_| {
                format!(
                    "PORT={value:?} is not a port number (0 to 65535; unset means {DEFAULT_PORT})"
                )
            })?,
        };
        Ok(Self {
            host: get("LISTEN_HOST").map_or_else(|| "0.0.0.0".to_owned(), |h| h.trim().to_owned()),
            port,
            dir: get("ALERT_WEBHOOK_DIR").map(PathBuf::from),
        })
    }
}

/// Why the receiver could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("ALERT_WEBHOOK_DIR={}: cannot create it: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on LISTEN_HOST={host:?} PORT={port}: {source}")]
    Listen {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(#[source] std::io::Error),
}

/// Binds, logs `listening` with the bound address and port, and serves until `shutdown`
/// completes, then lets in-flight requests finish.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    if let Some(dir) = &config.dir {
        // Off the runtime's threads, like every file access here.
        let create = dir.clone();
        tokio::task::spawn_blocking(move || std::fs::create_dir_all(create))
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join)))
            .map_err(|source| RunError::CreateDir {
                dir: dir.clone(),
                source,
            })?;
    }
    let listen_error = |source| RunError::Listen {
        host: config.host.clone(),
        port: config.port,
        source,
    };
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(listen_error)?;
    let address = listener.local_addr().map_err(listen_error)?;
    tracing::info!(port = address.port(), address = %address, "listening");
    if let Some(dir) = &config.dir {
        let file = dir.join(NOTIFICATIONS_FILE);
        tracing::info!(file = %file.display(), "appending notifications");
    }
    axum::serve(listener, router(config.dir))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(RunError::Serve)
}

/// The routes, with an empty store.
pub fn router(dir: Option<PathBuf>) -> Router {
    let app = Arc::new(App {
        dir,
        store: Mutex::new(Store::new(MAX_NOTIFICATIONS, MAX_STORED_BYTES)),
        writer: tokio::sync::Mutex::new(()),
    });
    Router::new()
        .route("/alerts", get(list).post(receive))
        .route("/healthz", get(ok))
        .route("/readyz", get(ok))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

struct App {
    dir: Option<PathBuf>,
    store: Mutex<Store>,
    /// Held while one notification is written to the file and the store, so that both
    /// keep the same order.
    writer: tokio::sync::Mutex<()>,
}

async fn ok() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "not-found", "no such route")
}

async fn receive(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(rejection) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "bad-request",
                rejection.body_text(),
            );
        }
    };
    // Counted first, without building anything: the tree below is then of bounded size.
    if !within_value_budget(&body, MAX_JSON_VALUES) {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the body holds more than {MAX_JSON_VALUES} JSON values"),
        );
    }
    let mut notification: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "bad-request",
                format!("malformed JSON: {error}"),
            );
        }
    };
    let body_len = body.len();
    drop(body);
    let Some(object) = notification.as_object_mut() else {
        return invalid(None, "an Alertmanager notification is a JSON object");
    };
    if !object.get("alerts").is_some_and(Value::is_array) {
        return invalid(
            Some("alerts"),
            "an Alertmanager notification has an `alerts` array",
        );
    }
    let received_at = rfc3339_utc(SystemTime::now());
    object.insert("received_at".to_owned(), Value::from(received_at.as_str()));
    let summary = Summary::of(&notification);
    // Sized up front (compact JSON is about the body's size plus `received_at`), and trimmed
    // before it is stored: a buffer grown by doubling would keep up to twice its length, and
    // the store's bound counts lengths.
    let mut line = Vec::with_capacity(body_len + 64);
    if let Err(error) = serde_json::to_writer(&mut line, &notification) {
        // Not reachable (a Value always serializes into a Vec); answered, not panicked on.
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        );
    }
    drop(notification);

    let _order = app.writer.lock().await;
    if let Some(dir) = &app.dir {
        let path = dir.join(NOTIFICATIONS_FILE);
        line.push(b'\n');
        let written = tokio::task::spawn_blocking(move || {
            let result = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut file| file.write_all(&line));
            line.pop();
            result
                .map(|()| line)
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .await
        .unwrap_or_else(|e| Err(format!("the writing task failed: {e}")));
        line = match written {
            Ok(line) => line,
            Err(error) => {
                tracing::error!(error = %error, "cannot append the notification");
                // 5xx: Alertmanager retries the notification later.
                return problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage-failure",
                    format!("cannot append the notification: {error}"),
                );
            }
        };
    }
    line.shrink_to_fit();
    let kept = {
        let mut store = app
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        store.push(Bytes::from(line));
        store.len()
    };
    tracing::info!(
        status = %summary.status,
        receiver = %summary.receiver,
        alerts = %summary.alerts,
        count = summary.count,
        kept,
        "alert notification"
    );
    Json(json!({ "received_at": received_at })).into_response()
}

async fn list(State(app): State<Arc<App>>) -> Response {
    // Clones of reference-counted buffers: the answer is streamed from the stored bytes,
    // never copied into one string.
    let chunks = app
        .store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .json_array();
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::new(Chunks::new(chunks)),
    )
        .into_response()
}

/// Whether `json` holds at most `max` values (objects, arrays and scalars, keys not
/// counted). Syntax errors are left to the parser that follows: this pass, which allocates
/// nothing, refuses only what would be too large to parse into a tree.
fn within_value_budget(json: &[u8], max: usize) -> bool {
    let counter = Counter {
        left: &Cell::new(max),
        exceeded: &Cell::new(false),
    };
    let exceeded = counter.exceeded;
    let _ = counter.deserialize(&mut serde_json::Deserializer::from_slice(json));
    !exceeded.get()
}

/// Walks a JSON document, counting down one per value.
#[derive(Clone, Copy)]
struct Counter<'a> {
    left: &'a Cell<usize>,
    exceeded: &'a Cell<bool>,
}

impl Counter<'_> {
    fn tick<E: de::Error>(self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("too many JSON values"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Counter<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.tick()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.tick()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.tick()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.tick()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.tick()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.tick()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.tick()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.tick()?;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// What the log line says about one notification.
struct Summary {
    status: String,
    receiver: String,
    /// `name status` of each alert, comma-separated, the first [`LOGGED_ALERTS`] only.
    alerts: String,
    count: usize,
}

impl Summary {
    fn of(notification: &Value) -> Self {
        let text = |value: &Value| value.as_str().unwrap_or("?").to_owned();
        let alerts = notification["alerts"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        Self {
            status: text(&notification["status"]),
            receiver: text(&notification["receiver"]),
            alerts: alerts
                .iter()
                .take(LOGGED_ALERTS)
                .map(|alert| {
                    format!(
                        "{} {}",
                        text(&alert["labels"]["alertname"]),
                        text(&alert["status"])
                    )
                })
                .chain(
                    (alerts.len() > LOGGED_ALERTS)
                        .then(|| format!("and {} more", alerts.len() - LOGGED_ALERTS)),
                )
                .collect::<Vec<_>>()
                .join(", "),
            count: alerts.len(),
        }
    }
}

/// The notifications kept, oldest first, as compact JSON.
struct Store {
    entries: VecDeque<Bytes>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl Store {
    fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    /// Keeps `entry`, dropping the oldest ones beyond either bound (the newest one is kept
    /// whatever its size).
    fn push(&mut self, entry: Bytes) {
        self.bytes += entry.len();
        self.entries.push_back(entry);
        while self.entries.len() > self.max_entries
            || (self.bytes > self.max_bytes && self.entries.len() > 1)
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// `[`, the entries separated by `,`, `]`.
    fn json_array(&self) -> Vec<Bytes> {
        let mut chunks = Vec::with_capacity(2 * self.entries.len() + 1);
        chunks.push(Bytes::from_static(b"["));
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                chunks.push(Bytes::from_static(b","));
            }
            chunks.push(entry.clone());
        }
        chunks.push(Bytes::from_static(b"]"));
        chunks
    }
}

/// A response body made of buffers sent one after the other, its length known up front.
struct Chunks {
    chunks: std::vec::IntoIter<Bytes>,
    remaining: u64,
}

impl Chunks {
    fn new(chunks: Vec<Bytes>) -> Self {
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        Self {
            chunks: chunks.into_iter(),
            remaining,
        }
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.chunks.next().map(|chunk| {
            this.remaining -= chunk.len() as u64;
            Ok(Frame::data(chunk))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.len() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// An RFC 9457 problem+json answer, as the services give (`urn:problem-type:<kind>`).
fn problem(status: StatusCode, kind: &str, detail: impl Into<String>) -> Response {
    problem_with(status, kind, detail.into(), None)
}

/// A 422, naming the member that is wrong (none: the body as a whole).
fn invalid(field: Option<&str>, detail: &str) -> Response {
    problem_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-error",
        detail.to_owned(),
        field,
    )
}

fn problem_with(status: StatusCode, kind: &str, detail: String, field: Option<&str>) -> Response {
    let mut body = json!({
        "type": format!("urn:problem-type:{kind}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    if let Some(field) = field {
        body["field"] = Value::from(field);
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// `time` as RFC 3339 in UTC with milliseconds: `2026-05-01T12:34:56.789Z`.
fn rfc3339_utc(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`,
/// for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(seconds: u64, millis: u64) -> String {
        rfc3339_utc(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis))
    }

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_709_164_800, 0), "2024-02-29T00:00:00.000Z");
        assert_eq!(at(1_764_424_800, 999), "2025-11-29T14:00:00.999Z");
        assert_eq!(at(4_102_444_799, 0), "2099-12-31T23:59:59.000Z");
    }

    #[test]
    fn reads_port_host_and_dir() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            Config::from_lookup(env(&[])).unwrap(),
            Config {
                host: "0.0.0.0".into(),
                port: 9097,
                dir: None
            }
        );
        let config = Config::from_lookup(env(&[
            ("PORT", "0"),
            ("LISTEN_HOST", "127.0.0.1"),
            ("ALERT_WEBHOOK_DIR", "/tmp/alerts"),
        ]))
        .unwrap();
        assert_eq!(
            (config.host.as_str(), config.port),
            ("127.0.0.1", 0),
            "{config:?}"
        );
        assert_eq!(config.dir, Some(PathBuf::from("/tmp/alerts")));
        assert_eq!(
            Config::from_lookup(env(&[("PORT", "")])).unwrap().port,
            9097
        );
        for bad in ["http", "65536", "-1", "9097x"] {
            let error =
                Config::from_lookup(|name| (name == "PORT").then(|| bad.to_owned())).unwrap_err();
            assert!(error.starts_with(&format!("PORT={bad:?}")), "{error}");
        }
    }

    #[test]
    fn store_keeps_the_newest_within_both_bounds() {
        let entry = |n: usize| Bytes::from(format!("{{\"n\":{n}}}"));
        let mut store = Store::new(3, 1 << 20);
        for n in 0..5 {
            store.push(entry(n));
        }
        assert_eq!(store.len(), 3);
        let body: Vec<u8> = store.json_array().concat();
        assert_eq!(body, br#"[{"n":2},{"n":3},{"n":4}]"#);

        // 8 bytes each, 20 bytes allowed: two fit.
        let mut store = Store::new(100, 20);
        for n in 0..4 {
            store.push(entry(n));
        }
        assert_eq!(store.json_array().concat(), br#"[{"n":2},{"n":3}]"#);
        // One larger than the byte bound is still kept, alone.
        store.push(Bytes::from(vec![b'x'; 64]));
        assert_eq!(store.len(), 1);
        assert_eq!(store.bytes, 64);

        assert_eq!(Store::new(1, 1).json_array().concat(), b"[]");
    }

    #[test]
    fn counts_values_before_parsing() {
        // {} [] {} "a" [] 1 2.5 true null: nine values (keys do not count).
        let doc = br#"{"a": [], "b": {"c": "a", "d": [1, 2.5, true, null]}}"#;
        assert!(within_value_budget(doc, 9));
        assert!(!within_value_budget(doc, 8));
        let wide = format!("[{}0]", "0,".repeat(100_000));
        assert!(!within_value_budget(wide.as_bytes(), MAX_JSON_VALUES));
        // Syntax errors are the parser's to report.
        assert!(within_value_budget(b"{\"alerts\": [}", 10));
        assert!(within_value_budget(b"", 10));
        // A notification of 500 alerts is within the bound.
        let alert = json!({"status": "firing", "labels": {"alertname": "A", "severity": "page",
            "service": "service-a", "slo": "x"}, "annotations": {"summary": "s",
            "description": "d"}, "startsAt": "t", "endsAt": "t", "generatorURL": "u",
            "fingerprint": "f"});
        let notification = json!({"version": "4", "status": "firing", "alerts": vec![alert; 500]});
        assert!(within_value_budget(
            notification.to_string().as_bytes(),
            MAX_JSON_VALUES
        ));
    }

    #[test]
    fn summarises_names_and_statuses() {
        let summary = Summary::of(&json!({
            "status": "firing",
            "receiver": "webhook",
            "alerts": [
                {"status": "firing", "labels": {"alertname": "HighErrorRate"}},
                {"status": "resolved", "labels": {"alertname": "ServiceDown"}},
                {"labels": {}},
            ],
        }));
        assert_eq!(summary.status, "firing");
        assert_eq!(summary.receiver, "webhook");
        assert_eq!(
            summary.alerts,
            "HighErrorRate firing, ServiceDown resolved, ? ?"
        );
        assert_eq!(summary.count, 3);

        let many =
            json!({"alerts": vec![json!({"status": "firing", "labels": {"alertname": "A"}}); 25]});
        let alerts = Summary::of(&many).alerts;
        assert!(alerts.ends_with("A firing, and 5 more"), "{alerts}");
        assert_eq!(alerts.matches("A firing").count(), LOGGED_ALERTS);
    }
}
