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
    sync::{Mutex, OnceLock},
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

/// How long a process may take to bind its port and log it.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stack may take until every `/readyz` answers 200.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One service started on its own, killed when dropped.
pub struct LoneService {
    /// Its port on 127.0.0.1 (bound by the service itself: no race with other tests).
    pub port: u16,
    _child: Child,
}

/// Starts one service binary alone with `env` (plus `PORT=0` and telemetry off) and
/// returns once it listens, without waiting for it to be ready: for tests of how a
/// service starts.
pub async fn start_alone(service: &'static str, env: &[(&str, &str)]) -> Result<LoneService> {
    let log = std::env::temp_dir().join(format!(
        "otel-demo-e2e-{service}-{:08x}.log",
        fastrand::u32(..)
    ));
    let mut command = Command::new(bin_dir()?.join(service));
    for (key, _) in std::env::vars() {
        if key.starts_with("OTEL_") || key.starts_with("DATABASE") || key.starts_with("KAFKA") {
            command.env_remove(key);
        }
    }
    command
        .env("PORT", "0")
        .env("OTEL_SDK_DISABLED", "true")
        .env("LOG_FORMAT", "json")
        .envs(env.iter().copied());
    let mut child = spawn_logged(service, command, &log)?;
    let port = wait_listening(service, &mut child, &log, 0).await?;
    Ok(LoneService {
        port,
        _child: child,
    })
}

/// Spawns `command` with stdout and stderr appended to `log`, killed when dropped.
fn spawn_logged(service: &str, mut command: Command, log: &Path) -> Result<Child> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {service}"))
}

/// Waits for the `listening` line a service logs once its socket is bound (after byte
/// `offset` of its log) and returns the port in it. Each service binds the port itself
/// (`PORT=0` asks the kernel for a free one), so two processes can never be handed the
/// same port. Fails at once, with the log's tail, if the process exits first.
async fn wait_listening(
    service: &str,
    child: &mut Child,
    log: &Path,
    offset: usize,
) -> Result<u16> {
    let deadline = tokio::time::Instant::now() + LISTEN_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let port = text
            .get(offset..)
            .unwrap_or_default()
            .lines()
            .find_map(|line| {
                // The telemetry crate's JSON puts `message` on top, tracing's plain JSON
                // format (the third-party stub's) into `fields`.
                let line: Value = serde_json::from_str(line).ok()?;
                let message = line.get("message").unwrap_or(&line["fields"]["message"]);
                (message == "listening").then(|| line["fields"]["port"].as_u64())?
            });
        if let Some(port) = port {
            return u16::try_from(port).context("port out of range");
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "{service} exited with {status} before listening:\n{}",
                tail(log)
            );
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{service} did not log `listening` within {LISTEN_TIMEOUT:?}:\n{}",
                tail(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last 20 lines of a log file.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
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

/// The services each service calls, as (URL variable, service). [`SERVICES`] lists every
/// service after the ones it calls, so their ports are known when it starts.
fn upstreams(service: &str) -> &'static [(&'static str, &'static str)] {
    match service {
        "service-a" => &[
            ("SERVICE_B_URL", "service-b"),
            ("SERVICE_D_URL", "service-d"),
            ("THIRD_PARTY_URL", "third-party-stub"),
        ],
        "service-c" => &[("SERVICE_A_URL", "service-a")],
        "api-gateway" => &[
            ("SERVICE_A_URL", "service-a"),
            ("SERVICE_D_URL", "service-d"),
        ],
        _ => &[],
    }
}

/// How to start a stack.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// `KAFKA_TRACE_MODE` of service-c (`child` when `None`).
    pub kafka_trace_mode: Option<&'static str>,
    /// Extra variables for one service, as (service, name, value); they win over the
    /// stack's own.
    pub env: Vec<(&'static str, &'static str, &'static str)>,
    /// Postgres and Kafka to use instead of the shared ones (see [`PrivateInfra`]).
    pub infra: Option<Infra>,
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
    children: Mutex<HashMap<&'static str, Child>>,
    http: reqwest::Client,
}

impl Stack {
    /// Starts every service, each after the ones it calls, and waits until all are
    /// ready. Fails naming the service, with its log's tail, if any process exits or a
    /// service is not ready in time: no test runs against a half-started stack.
    pub async fn start(options: StackOptions) -> Result<Self> {
        let infra = match &options.infra {
            Some(infra) => infra.clone(),
            None => infra()?,
        };
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
        let mut stack = Self {
            otlp,
            ports: HashMap::new(),
            topic,
            database_url,
            infra,
            log_dir,
            bin_dir,
            env: HashMap::new(),
            children: Mutex::new(HashMap::new()),
            http: reqwest::Client::builder().no_proxy().build()?,
        };
        for service in SERVICES {
            let mut vars: HashMap<String, String> = common
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            for (variable, upstream) in upstreams(service) {
                vars.insert(variable.to_string(), stack.url(upstream));
            }
            vars.insert("PORT".into(), "0".into());
            vars.insert("OTEL_SERVICE_NAME".into(), service.to_string());
            for (_, name, value) in options.env.iter().filter(|(s, ..)| *s == service) {
                vars.insert(name.to_string(), value.to_string());
            }
            stack.env.insert(service, vars);
            let port = stack.launch(service).await?;
            stack.ports.insert(service, port);
            // A restart binds the same port: the others know the service by it.
            stack
                .env
                .get_mut(service)
                .expect("just inserted")
                .insert("PORT".into(), port.to_string());
        }
        stack.wait_ready().await?;
        Ok(stack)
    }

    /// Spawns a service and returns the port it listens on.
    async fn launch(&mut self, service: &'static str) -> Result<u16> {
        let log = self.log_path(service);
        let offset = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        let mut command = Command::new(self.bin_dir.join(service));
        for (key, _) in std::env::vars() {
            if key.starts_with("OTEL_") || key.starts_with("FAULT") {
                command.env_remove(key);
            }
        }
        command.envs(&self.env[service]);
        let mut child = spawn_logged(service, command, &log)?;
        let port = wait_listening(service, &mut child, &log, offset).await?;
        self.children().insert(service, child);
        Ok(port)
    }

    fn children(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Child>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails naming the first process of the stack that has exited, with its log's tail.
    pub fn check_running(&self) -> Result<()> {
        for (service, child) in self.children().iter_mut() {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{service} exited with {status}:\n{}",
                    self.log_tail(service)
                );
            }
        }
        Ok(())
    }

    /// Waits until every running service answers `/readyz` with 200.
    async fn wait_ready(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let mut waiting: Vec<&'static str> = self.children().keys().copied().collect();
        loop {
            self.check_running()?;
            let mut still = Vec::new();
            for service in waiting {
                let url = format!("{}/readyz", self.url(service));
                match self.http.get(&url).send().await {
                    Ok(response) if response.status().is_success() => {}
                    _ => still.push(service),
                }
            }
            waiting = still;
            if waiting.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let service = waiting[0];
                let answer = match self
                    .http
                    .get(format!("{}/readyz", self.url(service)))
                    .send()
                    .await
                {
                    Ok(response) => response.text().await.unwrap_or_default(),
                    Err(error) => error.to_string(),
                };
                bail!(
                    "not ready after {READY_TIMEOUT:?}: {waiting:?}; {service}'s /readyz: {answer}\n{}",
                    self.log_tail(service)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
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
        let child = self.children().remove(service);
        if let Some(mut child) = child {
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

    /// The process id of a running service (to read its memory, for example).
    pub fn pid(&self, service: &str) -> Option<u32> {
        self.children().get(service).and_then(Child::id)
    }

    /// Kills a service with SIGKILL (no shutdown of any kind) and reaps it.
    pub async fn kill(&mut self, service: &'static str) -> Result<()> {
        let child = self.children().remove(service);
        if let Some(mut child) = child {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    /// Starts a stopped service again (same port and settings) and waits until the
    /// stack is ready.
    pub async fn restart(&mut self, service: &'static str) -> Result<()> {
        let port = self.launch(service).await.with_context(|| {
            format!(
                "restarting {service} on its port {} (taken by another process meanwhile?)",
                self.ports[service]
            )
        })?;
        anyhow::ensure!(
            port == self.ports[service],
            "{service} came back on port {port}"
        );
        self.wait_ready().await
    }

    fn log_path(&self, service: &str) -> PathBuf {
        self.log_dir.join(format!("{service}.log"))
    }

    /// Every JSON line a service wrote to stdout.
    pub fn json_logs(&self, service: &str) -> Vec<Value> {
        std::fs::read_to_string(self.log_path(service))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// The last lines of a service's output, for failure messages.
    pub fn log_tail(&self, service: &str) -> String {
        tail(&self.log_path(service))
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
                // A dead process is the likelier cause than a slow one: name it.
                self.check_running()
                    .with_context(|| format!("order {order_id} still {}", order["status"]))?;
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

/// A Postgres and a Kafka of their own (`scripts/infra.sh up` with its own state
/// directory and ports), for tests that stop or pause them: the shared ones serve other
/// tests meanwhile. Left running, like the shared ones; `scripts/test.sh` stops it.
pub struct PrivateInfra {
    /// Its addresses, for [`StackOptions::infra`].
    pub infra: Infra,
    state: PathBuf,
}

/// Where [`PrivateInfra::start`] keeps its data, logs and pid files.
pub const PRIVATE_INFRA_STATE: &str = "/tmp/otel-rust-demo-reliability";

impl PrivateInfra {
    /// Starts (or finds running) the private Postgres on 25433 and Kafka on 29095. Ports
    /// below Linux's ephemeral range (32768 and up), which outgoing connections and
    /// `PORT=0` services take from: a port there can be in use by chance.
    pub fn start() -> Result<Self> {
        // A run killed while its broker was paused left it frozen: infra.sh would find
        // its port open and call it healthy.
        if let Ok(pid) = std::fs::read_to_string(Path::new(PRIVATE_INFRA_STATE).join("kafka.pid")) {
            let _ = signal(pid.trim(), "-CONT");
        }
        let script = workspace_root().join("scripts/infra.sh");
        let output = std::process::Command::new(&script)
            .arg("up")
            .env("OTEL_DEMO_STATE", PRIVATE_INFRA_STATE)
            .env("POSTGRES_PORT", "25433")
            .env("KAFKA_PORT", "29095")
            .env("KAFKA_CONTROLLER_PORT", "29196")
            .env("KAFKA_HEAP_OPTS", "-Xms128m -Xmx384m")
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        anyhow::ensure!(output.status.success(), "{} up failed", script.display());
        let text = String::from_utf8_lossy(&output.stdout);
        let export = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .map(|v| v.trim_matches('\'').to_owned())
                .with_context(|| format!("no {name} from infra.sh"))
        };
        Ok(Self {
            infra: Infra {
                database_url: export("DATABASE_URL")?,
                kafka_brokers: export("KAFKA_BROKERS")?,
            },
            state: PRIVATE_INFRA_STATE.into(),
        })
    }

    fn pid(&self, file: &str) -> Result<String> {
        let pid = std::fs::read_to_string(self.state.join(file))?;
        Ok(pid.lines().next().unwrap_or_default().trim().to_owned())
    }

    /// Freezes the Kafka broker (SIGSTOP): connections stay open and nothing answers,
    /// as with a broker that hangs or a network that drops everything.
    pub fn pause_kafka(&self) -> Result<()> {
        signal(&self.pid("kafka.pid")?, "-STOP")
    }

    /// Lets the broker run again (SIGCONT).
    pub fn resume_kafka(&self) -> Result<()> {
        signal(&self.pid("kafka.pid")?, "-CONT")
    }

    /// Stops Postgres (`pg_ctl stop -m fast`: every connection is closed).
    pub fn stop_postgres(&self) -> Result<()> {
        self.pg_ctl(&["-m", "fast", "-w", "-t", "30", "stop"])
    }

    /// Starts Postgres again on the same data and port.
    pub fn start_postgres(&self) -> Result<()> {
        let log = self.state.join("postgres/postgres.log");
        self.pg_ctl(&["-l", &log.to_string_lossy(), "-w", "-t", "60", "start"])?;
        // infra.sh finds (and later stops) Postgres by this pid file.
        let pid = std::fs::read_to_string(self.state.join("postgres/data/postmaster.pid"))?;
        std::fs::write(
            self.state.join("postgres.pid"),
            format!("{}\n", pid.lines().next().unwrap_or_default()),
        )?;
        Ok(())
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<()> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")?
            .filter_map(|e| Some(e.ok()?.path().join("bin/pg_ctl")))
            .filter(|p| p.exists())
            .max()
            .context("no /usr/lib/postgresql/*/bin/pg_ctl")?;
        let data = self.state.join("postgres/data");
        let is_root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        // Postgres refuses to run as root; infra.sh runs it as the postgres user.
        let mut command = if is_root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&bin);
            c
        } else {
            std::process::Command::new(&bin)
        };
        let status = command
            .arg("-D")
            .arg(&data)
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "pg_ctl {args:?} failed");
        Ok(())
    }
}

fn signal(pid: &str, signal: &str) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args([signal, pid])
        .status()?;
    anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
    Ok(())
}
