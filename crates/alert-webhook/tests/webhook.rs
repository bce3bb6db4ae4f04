//! The `alert-webhook` binary from the outside: started on a free port (`PORT=0`, the port
//! read back from its `listening` line), sent notifications the way Alertmanager sends them,
//! read back over `GET /alerts`, its log and its JSON lines file.

use serde_json::{Value, json};
use std::{
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One running `alert-webhook`, killed when dropped.
struct Webhook {
    child: Child,
    base: String,
    /// Every stdout line so far.
    stdout: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl Webhook {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut child = command(env)
            .env("PORT", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("alert-webhook starts");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let lines = Arc::clone(&stdout);
        let reader = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let fields = &serde_json::from_str::<Value>(&line).unwrap()["fields"];
                    let port = fields["port"].as_u64().unwrap();
                    assert_eq!(
                        fields["address"],
                        format!("127.0.0.1:{port}"),
                        "the line names the bound address: {line}"
                    );
                    let _ = port_tx.send(port);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let port = port_rx
            .recv_timeout(START_TIMEOUT)
            .expect("a `listening` line with the port");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, String, Value) {
        let response = self
            .http
            .post(format!("{}/alerts", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST /alerts answers");
        answer(response).await
    }

    async fn get(&self, path: &str) -> (u16, String, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET answers");
        answer(response).await
    }

    /// Waits for a stdout line containing every one of `parts`.
    fn wait_for_line(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find(|line| parts.iter().all(|part| line.contains(part)))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no stdout line with {parts:?} in:\n{}",
                self.stdout.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alert-webhook"));
    command
        .env_remove("ALERT_WEBHOOK_DIR")
        .env_remove("RUST_LOG")
        .env("LISTEN_HOST", "127.0.0.1")
        .envs(env.iter().copied());
    command
}

/// Status, content type and body (JSON, or the text as a JSON string).
async fn answer(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, content_type, body)
}

/// A notification as Alertmanager v0.35 posts it (webhook payload version 4).
fn notification(status: &str, alertname: &str) -> Value {
    let ends_at = if status == "resolved" {
        "2026-05-01T12:05:00.000Z"
    } else {
        "0001-01-01T00:00:00Z"
    };
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\"}}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "webhook",
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname, "severity": "warning", "service_name": "service-a"},
        "commonAnnotations": {"summary": "service-a answers 5xx to more than 5% of requests"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": alertname, "severity": "warning", "service_name": "service-a"},
            "annotations": {"summary": "service-a answers 5xx to more than 5% of requests"},
            "startsAt": "2026-05-01T12:00:00.000Z",
            "endsAt": ends_at,
            "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
            "fingerprint": "1b0ac3ee4c1c7e3d"
        }]
    })
}

/// `received_at` looks like `2026-05-01T12:34:56.789Z`, and the rest is what was posted.
fn assert_kept(kept: &Value, posted: &Value) {
    let mut kept = kept.clone();
    let received_at = kept
        .as_object_mut()
        .unwrap()
        .remove("received_at")
        .expect("a received_at member");
    let received_at = received_at.as_str().unwrap();
    let shape = received_at
        .chars()
        .map(|c| if c.is_ascii_digit() { 'D' } else { c })
        .collect::<String>();
    assert_eq!(shape, "DDDD-DD-DDTDD:DD:DD.DDDZ", "{received_at}");
    assert!(received_at > "2025-01-01", "{received_at}");
    assert_eq!(&kept, posted);
}

fn assert_problem(answer: &(u16, String, Value), status: u16) {
    let (got, content_type, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:problem-type:"),
        "{body}"
    );
    assert!(!body["detail"].as_str().unwrap().is_empty(), "{body}");
}

#[tokio::test]
async fn keeps_and_lists_what_alertmanager_posts() {
    let webhook = Webhook::start(&[]);
    let (status, _, body) = webhook.get("/alerts").await;
    assert_eq!((status, body), (200, json!([])));

    let firing = notification("firing", "HighErrorRate");
    let resolved = notification("resolved", "HighErrorRate");
    for sent in [&firing, &resolved] {
        let (status, content_type, body) = webhook.post(sent.to_string()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(content_type, "application/json");
        assert!(body["received_at"].is_string(), "{body}");
    }

    let (status, content_type, kept) = webhook.get("/alerts").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json");
    let kept = kept.as_array().expect("a JSON array");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_kept(&kept[0], &firing);
    assert_kept(&kept[1], &resolved);
    assert!(kept[0]["received_at"].as_str() <= kept[1]["received_at"].as_str());

    // One log line per notification, naming the alerts and their status.
    let line = webhook.wait_for_line(&["alert notification", "HighErrorRate firing"]);
    let fields = &serde_json::from_str::<Value>(&line).unwrap()["fields"];
    assert_eq!(fields["status"], "firing", "{line}");
    assert_eq!(fields["receiver"], "webhook", "{line}");
    webhook.wait_for_line(&["alert notification", "HighErrorRate resolved"]);

    for path in ["/healthz", "/readyz"] {
        assert_eq!(webhook.get(path).await.0, 200, "{path}");
    }
    assert_problem(&webhook.get("/nope").await, 404);
}

#[tokio::test]
async fn bad_bodies_are_problems_not_crashes() {
    let mut webhook = Webhook::start(&[]);

    for malformed in [
        "{\"status\": \"firing\",",
        "",
        "not json",
        "{\"alerts\": [}",
    ] {
        assert_problem(&webhook.post(malformed).await, 400);
    }
    // Well-formed JSON that is no notification.
    for not_a_notification in ["[]", "42", "{\"status\": \"firing\"}", "{\"alerts\": {}}"] {
        let answer = webhook.post(not_a_notification).await;
        assert_problem(&answer, 422);
    }

    // Over 1 MiB: refused. Just under: kept.
    let padded = |size: usize| {
        let mut sent = notification("firing", "Big");
        let base = sent.to_string().len();
        sent["commonAnnotations"]["description"] = Value::from("x".repeat(size - base - 17));
        let text = sent.to_string();
        assert_eq!(text.len(), size);
        (sent, text)
    };
    let (_, too_big) = padded((1 << 20) + 1);
    assert_problem(&webhook.post(too_big).await, 413);
    // Under 1 MiB but 100000 values: refused before it is parsed into a tree.
    let wide = format!("{{\"alerts\": [{}0]}}", "0,".repeat(100_000));
    let answer = webhook.post(wide).await;
    assert_problem(&answer, 413);
    assert!(answer.2["detail"].as_str().unwrap().contains("JSON values"));
    let (sent, just_fits) = padded(1 << 20);
    let (status, _, body) = webhook.post(just_fits).await;
    assert_eq!(status, 200, "{body}");

    assert!(webhook.still_running());
    let (_, _, kept) = webhook.get("/alerts").await;
    let kept = kept.as_array().unwrap();
    assert_eq!(kept.len(), 1, "only the good notification is kept");
    assert_kept(&kept[0], &sent);
}

#[tokio::test]
async fn appends_json_lines_to_alert_webhook_dir() {
    let dir = std::env::temp_dir().join(format!(
        "alert-webhook-test-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    // Created at startup when missing, nested too.
    let nested = dir.join("nested");
    let webhook = Webhook::start(&[("ALERT_WEBHOOK_DIR", nested.to_str().unwrap())]);
    let sent = [
        notification("firing", "ServiceDown"),
        notification("resolved", "ServiceDown"),
    ];
    for notification in &sent {
        assert_eq!(webhook.post(notification.to_string()).await.0, 200);
    }
    assert_problem(&webhook.post("{").await, 400);

    let file: PathBuf = nested.join("notifications.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, sent) in lines.iter().zip(&sent) {
        assert_kept(line, sent);
    }
    // The file and GET /alerts hold the same notifications.
    assert_eq!(webhook.get("/alerts").await.2, Value::Array(lines));
    drop(webhook);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the binary to its end (with a deadline) and returns its status and stderr.
fn run_to_end(mut command: Command) -> (ExitStatus, String) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("alert-webhook did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

#[test]
fn an_invalid_port_stops_startup_naming_port() {
    for bad in ["http", "70000", "-1"] {
        let mut command = command(&[]);
        command.env("PORT", bad);
        let (status, stderr) = run_to_end(command);
        assert_eq!(status.code(), Some(1), "PORT={bad}: {stderr}");
        assert!(
            stderr.starts_with("alert-webhook: PORT=") && stderr.contains(bad),
            "PORT={bad}: {stderr}"
        );
    }
}

#[test]
fn a_port_in_use_stops_startup_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut command = command(&[]);
    command.env("PORT", &port);
    let (status, stderr) = run_to_end(command);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("LISTEN_HOST") && stderr.contains(&format!("PORT={port}")),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_stops_it_cleanly() {
    let mut webhook = Webhook::start(&[]);
    let pid = webhook.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = webhook.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    webhook.wait_for_line(&["shutdown requested"]);
}
