//! End-to-end harness: the demo's real binaries as separate processes, against real
//! Postgres and real Kafka, exporting OTLP to an in-test receiver.
//!
//! Postgres and Kafka come from `DATABASE_URL` and `KAFKA_BROKERS`; when those are unset
//! the harness runs `scripts/infra.sh up` itself (and leaves them running; `down` is the
//! caller's job, as `scripts/test.sh` does). The service binaries must be built first
//! (`cargo build --workspace --bins`, which `scripts/test.sh` does). Each [`Stack`] uses
//! its own ports, Kafka topic and consumer group, so stacks can run side by side.
#![forbid(unsafe_code)]

use anyhow::{Context as _, Result, bail};
use otlp_receiver::OtlpReceiver;
use serde_json::Value;
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::OnceLock,
    time::Duration,
};
use tokio::process::{Child, Command};

/// The processes of one stack, in start order.
pub const SERVICES: [&str; 6] = [
    "third-party-stub",
    "service-d",
    "service-b",
    "service-a",
    "service-c",
    "api-gateway",
];

/// The admin token every stack uses.
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// Postgres and Kafka addresses.
#[derive(Debug, Clone)]
pub struct Infra {
    /// Postgres URL.
    pub database_url: String,
    /// Kafka bootstrap servers.
    pub kafka_brokers: String,
}

/// Finds (or starts, once per process) Postgres and Kafka.
pub fn infra() -> Result<Infra> {
    static INFRA: OnceLock<Result<Infra, String>> = OnceLock::new();
    INFRA
        .get_or_init(|| {
            if let (Ok(database_url), Ok(kafka_brokers)) = (
                std::env::var("DATABASE_URL"),
                std::env::var("KAFKA_BROKERS"),
            ) {
                return Ok(Infra {
                    database_url,
                    kafka_brokers,
                });
            }
            let script = workspace_root().join("scripts/infra.sh");
            let output = std::process::Command::new(&script)
                .arg("up")
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if !output.status.success() {
                return Err(format!("{} up failed", script.display()));
            }
            let exports: HashMap<String, String> = String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
                .map(|(k, v)| {
                    (
                        k.to_owned(),
                        v.trim_matches('\'').trim_matches('"').to_owned(),
                    )
                })
                .collect();
            Ok(Infra {
                database_url: exports
                    .get("DATABASE_URL")
                    .cloned()
                    .ok_or("no DATABASE_URL from infra.sh")?,
                kafka_brokers: exports
                    .get("KAFKA_BROKERS")
                    .cloned()
                    .ok_or("no KAFKA_BROKERS from infra.sh")?,
            })
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One service started on its own, killed when dropped.
pub struct LoneService {
    /// Its port on 127.0.0.1.
    pub port: u16,
    _child: Child,
}

/// Starts one service binary alone with `env` (plus a free `PORT` and telemetry off),
/// without waiting for it to be ready: for tests of how a service starts.
pub fn start_alone(service: &str, env: &[(&str, &str)]) -> Result<LoneService> {
    let port = free_port();
    let mut command = Command::new(bin_dir()?.join(service));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") || key.starts_with("DATABASE") || key.starts_with("KAFKA") {
            command.env_remove(key);
        }
    }
    let child = command
        .env("PORT", port.to_string())
        .env("OTEL_SDK_DISABLED", "true")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {service}"))?;
    Ok(LoneService {
        port,
        _child: child,
    })
}

/// Where cargo put the service binaries: next to this test's own `deps/` directory.
fn bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test binary has no target directory")?
        .to_path_buf();
    for service in SERVICES {
        if !dir.join(service).exists() {
            bail!(
                "{} is missing: build the services first (cargo build --workspace --bins, as scripts/test.sh does)",
                dir.join(service).display()
            );
        }
    }
    Ok(dir)
}

/// Creates database `name` next to the one `base_url` names; returns its URL.
pub async fn create_database(base_url: &str, name: &str) -> Result<String> {
    let pool = sqlx::PgPool::connect(base_url).await?;
    // The name is ours (hex), not input: safe to put into the statement.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await?;
    pool.close().await;
    let (server, _) = base_url
        .rsplit_once('/')
        .context("DATABASE_URL has no database name")?;
    Ok(format!("{server}/{name}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// How to start a stack.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// `KAFKA_TRACE_MODE` of service-c (`child` when `None`).
    pub kafka_trace_mode: Option<&'static str>,
}

/// One running stack.
pub struct Stack {
    /// Receives every service's OTLP export.
    pub otlp: OtlpReceiver,
    /// Port per service.
    pub ports: HashMap<&'static str, u16>,
    /// This stack's Kafka topic.
    pub topic: String,
    /// Postgres and Kafka.
    pub infra: Infra,
    /// This stack's own database.
    pub database_url: String,
    log_dir: PathBuf,
    bin_dir: PathBuf,
    env: HashMap<&'static str, HashMap<String, String>>,
    children: HashMap<&'static str, Child>,
    http: reqwest::Client,
}

impl Stack {
    /// Starts every service and waits until all are ready.
    pub async fn start(options: StackOptions) -> Result<Self> {
        let infra = infra()?;
        let bin_dir = bin_dir()?;
        let otlp = OtlpReceiver::start().await?;
        let run_id = format!("{:08x}", fastrand::u32(..));
        let topic = format!("order-events-e2e-{run_id}");
        let log_dir = std::env::temp_dir().join(format!("otel-demo-e2e-{run_id}"));
        std::fs::create_dir_all(&log_dir)?;
        // A database of its own: stacks running side by side must not relay each
        // other's outbox events.
        let database_url =
            create_database(&infra.database_url, &format!("orders_e2e_{run_id}")).await?;
        let ports: HashMap<&'static str, u16> =
            SERVICES.iter().map(|s| (*s, free_port())).collect();
        let url = |s: &str| format!("http://127.0.0.1:{}", ports[s]);

        let common: Vec<(&str, String)> = vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.http_endpoint()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            // Export fast so the test does not wait for the default 5 s batches.
            ("OTEL_BSP_SCHEDULE_DELAY", "200".into()),
            ("OTEL_BLRP_SCHEDULE_DELAY", "200".into()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000".into()),
            ("RUST_LOG", "info".into()),
            ("LOG_FORMAT", "json".into()),
            ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
            ("DATABASE_URL", database_url.clone()),
            ("KAFKA_BROKERS", infra.kafka_brokers.clone()),
            ("KAFKA_TOPIC", topic.clone()),
            ("KAFKA_GROUP_ID", format!("service-c-e2e-{run_id}")),
            ("SERVICE_A_URL", url("service-a")),
            ("SERVICE_B_URL", url("service-b")),
            ("SERVICE_D_URL", url("service-d")),
            ("THIRD_PARTY_URL", url("third-party-stub")),
            ("BREAKER_FAILURE_THRESHOLD", "3".into()),
            ("BREAKER_OPEN_MS", "1500".into()),
            ("OUTBOX_RELAY_INTERVAL_MS", "300".into()),
            ("OUTBOX_RELAY_MIN_AGE_MS", "500".into()),
            ("WORK_LATENCY_MS", "2".into()),
            ("STUB_LATENCY_MS", "2".into()),
            (
                "KAFKA_TRACE_MODE",
                options.kafka_trace_mode.unwrap_or("child").into(),
            ),
        ];
        let env = SERVICES
            .iter()
            .map(|service| {
                let mut vars: HashMap<String, String> = common
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect();
                vars.insert("PORT".into(), ports[service].to_string());
                vars.insert("OTEL_SERVICE_NAME".into(), service.to_string());
                (*service, vars)
            })
            .collect();
        let mut stack = Self {
            otlp,
            ports,
            topic,
            database_url,
            infra,
            log_dir,
            bin_dir,
            env,
            children: HashMap::new(),
            http: reqwest::Client::builder().no_proxy().build()?,
        };
        for service in SERVICES {
            stack.spawn(service)?;
        }
        for service in SERVICES {
            stack.wait_ready(service).await?;
        }
        Ok(stack)
    }

    fn spawn(&mut self, service: &'static str) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{service}.log")))?;
        let mut command = Command::new(self.bin_dir.join(service));
        for (key, _) in std::env::vars() {
            if key.starts_with("OTEL_") || key.starts_with("FAULT") {
                command.env_remove(key);
            }
        }
        command
            .envs(&self.env[service])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        self.children.insert(
            service,
            command
                .spawn()
                .with_context(|| format!("starting {service}"))?,
        );
        Ok(())
    }

    async fn wait_ready(&mut self, service: &'static str) -> Result<()> {
        let url = format!("{}/readyz", self.url(service));
        for _ in 0..240 {
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = self.children.get_mut(service)
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{service} exited with {status}:\n{}",
                    self.log_tail(service)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bail!(
            "{service} not ready after 60 s:\n{}",
            self.log_tail(service)
        )
    }

    /// `http://127.0.0.1:<port>` of a service.
    pub fn url(&self, service: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[service])
    }

    /// A plain HTTP client (no proxy).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Stops a service with SIGTERM and waits for it to exit.
    pub async fn stop(&mut self, service: &'static str) -> Result<()> {
        if let Some(mut child) = self.children.remove(service) {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
            tokio::time::timeout(Duration::from_secs(15), child.wait())
                .await
                .with_context(|| format!("{service} ignored SIGTERM"))??;
        }
        Ok(())
    }

    /// Starts a stopped service again (same port and settings) and waits until ready.
    pub async fn restart(&mut self, service: &'static str) -> Result<()> {
        self.spawn(service)?;
        self.wait_ready(service).await
    }

    /// Every JSON line a service wrote to stdout.
    pub fn json_logs(&self, service: &str) -> Vec<Value> {
        std::fs::read_to_string(self.log_dir.join(format!("{service}.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// The last lines of a service's output, for failure messages.
    pub fn log_tail(&self, service: &str) -> String {
        let text = std::fs::read_to_string(self.log_dir.join(format!("{service}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Places an order through the gateway; returns (status, traceresponse, body).
    pub async fn place_order(
        &self,
        customer: &str,
        items: Value,
    ) -> Result<(u16, Option<String>, Value)> {
        let response = self
            .http
            .post(format!("{}/api/orders", self.url("api-gateway")))
            .json(&serde_json::json!({ "customer_id": customer, "items": items }))
            .send()
            .await?;
        let status = response.status().as_u16();
        let traceresponse = response
            .headers()
            .get("traceresponse")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((
            status,
            traceresponse,
            response.json().await.unwrap_or(Value::Null),
        ))
    }

    /// Polls `GET /api/orders/{id}` until its status is `status`.
    pub async fn wait_for_status(
        &self,
        order_id: &str,
        status: &str,
        timeout: Duration,
    ) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let order: Value = self
                .http
                .get(format!("{}/api/orders/{order_id}", self.url("api-gateway")))
                .send()
                .await?
                .json()
                .await?;
            if order["status"] == status {
                return Ok(order);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "order {order_id} still {} after {timeout:?}",
                    order["status"]
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The trace id named in a `traceresponse` header (`00-<trace>-<span>-<flags>`).
pub fn trace_id_of(traceresponse: &str) -> String {
    traceresponse
        .split('-')
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}
