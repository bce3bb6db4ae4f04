//! The load driver of `scripts/bench.sh`. Each subcommand prints one JSON line of figures.
//!
//! ```text
//! bench-driver http --url URL [--method POST --body JSON] (--concurrency N | --rate R)
//!              [--duration S] [--warmup S] [--pids name=pid,...] [--clk-tck 100]
//! bench-driver otlp --url http://127.0.0.1:4318/v1/traces --rate SPANS_PER_S [--batch 200]
//!              [--duration S] [--pids otel-collector=pid]
//! bench-driver freshness --url URL --listen 127.0.0.1:4700 [--count 40] [--interval-ms 250]
//!              [--settle S]
//! ```
//!
//! `http` with `--concurrency` is a closed loop (saturation: each worker has its own
//! keep-alive connection and sends the next request when the last one answered); with
//! `--rate` it is an open loop whose latencies count from each request's scheduled start,
//! so a stall shows in the percentiles instead of silently slowing the sender down.
//! `--pids` reads the CPU time (`/proc/<pid>/stat`) and resident set (`/proc/<pid>/status`)
//! of the processes under test at the start and end of the measured window.
#![forbid(unsafe_code)]

use anyhow::{Context, Result, bail};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value::Value as AnyValueKind},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span, span::SpanKind},
};
use prost::Message;
use serde_json::{Map, Value, json};
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

struct Args(HashMap<String, String>);

impl Args {
    fn parse(args: impl Iterator<Item = String>) -> Result<Self> {
        let mut map = HashMap::new();
        let mut args = args.peekable();
        while let Some(key) = args.next() {
            let key = key
                .strip_prefix("--")
                .with_context(|| format!("expected --option, got {key:?}"))?
                .to_owned();
            let value = args
                .next()
                .with_context(|| format!("--{key} needs a value"))?;
            map.insert(key, value);
        }
        Ok(Self(map))
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn req(&self, key: &str) -> Result<&str> {
        self.get(key)
            .with_context(|| format!("--{key} is required"))
    }
    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("--{key}: not a number: {v:?}")),
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    let args = Args::parse(argv)?;
    let figures = match command.as_str() {
        "http" => http(&args).await?,
        "otlp" => otlp(&args).await?,
        "freshness" => freshness(&args).await?,
        _ => {
            bail!("usage: bench-driver http|otlp|freshness --option value ... (see the crate docs)")
        }
    };
    println!("{figures}");
    Ok(())
}

/// CPU ticks and resident set of the processes under test.
struct Procs {
    pids: Vec<(String, u32)>,
    clk_tck: f64,
}

impl Procs {
    fn from_args(args: &Args) -> Result<Self> {
        let mut pids = Vec::new();
        for entry in args
            .get("pids")
            .unwrap_or("")
            .split(',')
            .filter(|e| !e.is_empty())
        {
            let (name, pid) = entry
                .split_once('=')
                .with_context(|| format!("--pids: expected name=pid, got {entry:?}"))?;
            pids.push((name.to_owned(), pid.parse().context("--pids: pid")?));
        }
        Ok(Self {
            pids,
            clk_tck: args.num("clk-tck", 100.0)?,
        })
    }

    /// utime + stime of each process, in clock ticks.
    fn cpu_ticks(&self) -> Vec<u64> {
        self.pids
            .iter()
            .map(|(_, pid)| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // Fields after the command name, which is in parentheses and may hold spaces.
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map(|(_, rest)| rest.split_whitespace().collect())
                    .unwrap_or_default();
                // utime and stime are fields 14 and 15 of the line: 12 and 13 after ')'.
                let get = |i: usize| {
                    fields
                        .get(i)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                get(11) + get(12)
            })
            .collect()
    }

    fn status_kb(&self, field: &str) -> Map<String, Value> {
        self.pids
            .iter()
            .map(|(name, pid)| {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let kb = status
                    .lines()
                    .find_map(|l| l.strip_prefix(field))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                (name.clone(), json!(kb))
            })
            .collect()
    }

    /// CPU milliseconds per process between two `cpu_ticks` readings.
    fn cpu_ms(&self, before: &[u64], after: &[u64]) -> Map<String, Value> {
        self.pids
            .iter()
            .zip(before.iter().zip(after))
            .map(|((name, _), (b, a))| {
                let ms = (a.saturating_sub(*b)) as f64 * 1000.0 / self.clk_tck;
                (name.clone(), json!(ms))
            })
            .collect()
    }
}

fn percentile(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted_us.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted_us[index]) / 1000.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn client(pool: usize) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(pool)
        .timeout(Duration::from_secs(10))
        .build()?)
}

#[derive(Default)]
struct Tally {
    latencies_us: Mutex<Vec<u32>>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn record(&self, latency: Duration, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                let us = latency.as_micros().min(u128::from(u32::MAX)) as u32;
                self.latencies_us
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(us);
            }
            Err(error) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(error);
            }
        }
    }
}

#[derive(Clone)]
struct Call {
    url: String,
    body: Option<String>,
}

impl Call {
    async fn send(&self, client: &reqwest::Client) -> Result<(), String> {
        let request = match &self.body {
            Some(body) => client
                .post(&self.url)
                .header("content-type", "application/json")
                .body(body.clone()),
            None => client.get(&self.url),
        };
        let response = request.send().await.map_err(|e| format!("send: {e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("body: {e}"))?;
        if status.is_success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&body);
            Err(format!(
                "status {status}: {}",
                text.chars().take(200).collect::<String>()
            ))
        }
    }
}

async fn http(args: &Args) -> Result<Value> {
    let call = Call {
        url: args.req("url")?.to_owned(),
        body: match args.get("method").unwrap_or("GET") {
            "GET" => None,
            "POST" => Some(args.get("body").unwrap_or("{}").to_owned()),
            other => bail!("--method: GET or POST, not {other}"),
        },
    };
    let duration = Duration::from_secs_f64(args.num("duration", 10.0)?);
    let warmup = Duration::from_secs_f64(args.num("warmup", 2.0)?);
    let procs = Procs::from_args(args)?;
    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let (mode, load, before, after, rss) = if let Some(rate) = args.get("rate") {
        let rate: f64 = rate.parse().context("--rate")?;
        let max_inflight: usize = args.num("max-inflight", 512)?;
        let shared = client(max_inflight)?;
        let inflight = Arc::new(AtomicU64::new(0));
        let interval = Duration::from_secs_f64(1.0 / rate);
        let mut next = start;
        let mut before = None;
        let mut tasks = tokio::task::JoinSet::new();
        while next < end {
            let now = Instant::now();
            if before.is_none() && now >= measure_from {
                before = Some(procs.cpu_ticks());
            }
            while next <= now && next < end {
                let scheduled = next;
                next += interval;
                let record = scheduled >= measure_from;
                if inflight.load(Ordering::Relaxed) >= max_inflight as u64 {
                    // The service is this far behind: count the request as failed, unsent.
                    if record {
                        tally.record(Duration::ZERO, Err("over --max-inflight".into()));
                    }
                    continue;
                }
                let (call, client, tally, inflight) = (
                    call.clone(),
                    shared.clone(),
                    tally.clone(),
                    inflight.clone(),
                );
                inflight.fetch_add(1, Ordering::Relaxed);
                tasks.spawn(async move {
                    let outcome = call.send(&client).await;
                    if record {
                        tally.record(scheduled.elapsed(), outcome);
                    }
                    inflight.fetch_sub(1, Ordering::Relaxed);
                });
            }
            while tasks.try_join_next().is_some() {}
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let after = procs.cpu_ticks();
        let before = before.unwrap_or_else(|| after.clone());
        let rss = procs.status_kb("VmRSS:");
        while tasks.join_next().await.is_some() {}
        ("open", json!(rate), before, after, rss)
    } else {
        let workers: usize = args.num("concurrency", 16)?;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (call, tally) = (call.clone(), tally.clone());
            let client = client(1)?;
            tasks.spawn(async move {
                while Instant::now() < end {
                    let sent = Instant::now();
                    let outcome = call.send(&client).await;
                    if sent >= measure_from && Instant::now() <= end {
                        tally.record(sent.elapsed(), outcome);
                    }
                }
            });
        }
        tokio::time::sleep_until(measure_from.into()).await;
        let before = procs.cpu_ticks();
        tokio::time::sleep_until(end.into()).await;
        let after = procs.cpu_ticks();
        let rss = procs.status_kb("VmRSS:");
        while tasks.join_next().await.is_some() {}
        ("closed", json!(workers), before, after, rss)
    };
    let mut latencies =
        std::mem::take(&mut *tally.latencies_us.lock().unwrap_or_else(|e| e.into_inner()));
    latencies.sort_unstable();
    let ok = latencies.len() as f64;
    let cpu = procs.cpu_ms(&before, &after);
    let cpu_total: f64 = cpu.values().filter_map(Value::as_f64).sum();
    let completed = ok + tally.errors.load(Ordering::Relaxed) as f64;
    Ok(json!({
        "kind": "http",
        "loop": mode,
        "load": load,
        "url": call.url,
        "seconds": duration.as_secs_f64(),
        "ok": ok,
        "errors": tally.errors.load(Ordering::Relaxed),
        "first_error": *tally.first_error.lock().unwrap_or_else(|e| e.into_inner()),
        "rps": ok / duration.as_secs_f64(),
        "p50_ms": percentile(&latencies, 0.50),
        "p90_ms": percentile(&latencies, 0.90),
        "p99_ms": percentile(&latencies, 0.99),
        "max_ms": percentile(&latencies, 1.0),
        "cpu_ms": cpu,
        "cpu_ms_per_1000": if completed > 0.0 { cpu_total * 1000.0 / completed } else { f64::NAN },
        "rss_kb": rss,
        "loadavg": loadavg(),
    }))
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(AnyValueKind::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn int_attr(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(AnyValueKind::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn random_bytes<const N: usize>() -> Vec<u8> {
    (0..N).map(|_| fastrand::u8(..)).collect()
}

/// One export request of `spans` spans: traces of four spans shaped like the demo's read
/// path (gateway server and client, catalog server, database client), HTTP attributes as
/// the services set them, one resource per service.
fn trace_batch(spans: usize) -> ExportTraceServiceRequest {
    const SHAPE: [(&str, &str, SpanKind); 4] = [
        ("api-gateway", "GET /api/products", SpanKind::Server),
        ("api-gateway", "GET", SpanKind::Client),
        ("service-d", "GET /products", SpanKind::Server),
        ("service-d", "SELECT products", SpanKind::Client),
    ];
    let now = unix_nanos();
    let mut by_service: HashMap<&str, Vec<Span>> = HashMap::new();
    for t in 0..spans.div_ceil(SHAPE.len()) {
        let trace_id = random_bytes::<16>();
        let mut parent = Vec::new();
        for (i, (service, name, kind)) in SHAPE.iter().enumerate() {
            if t * SHAPE.len() + i >= spans {
                break;
            }
            let span_id = random_bytes::<8>();
            let span = Span {
                trace_id: trace_id.clone(),
                span_id: span_id.clone(),
                parent_span_id: parent.clone(),
                name: (*name).into(),
                kind: *kind as i32,
                start_time_unix_nano: now - 2_000_000 + i as u64 * 100_000,
                end_time_unix_nano: now - i as u64 * 100_000,
                attributes: vec![
                    string_attr("http.request.method", "GET"),
                    string_attr("http.route", "/api/products"),
                    int_attr("http.response.status_code", 200),
                    string_attr("url.path", "/api/products"),
                    string_attr("network.protocol.version", "1.1"),
                ],
                ..Default::default()
            };
            parent = span_id;
            by_service.entry(service).or_default().push(span);
        }
    }
    ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string_attr("service.name", service)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}

async fn otlp(args: &Args) -> Result<Value> {
    let url = args.req("url")?.to_owned();
    let rate: f64 = args.num("rate", 10_000.0)?;
    let batch: usize = args.num("batch", 200)?;
    let duration = Duration::from_secs_f64(args.num("duration", 10.0)?);
    let procs = Procs::from_args(args)?;
    let shared = client(64)?;
    let tally = Arc::new(Tally::default());
    let interval = Duration::from_secs_f64(batch as f64 / rate);
    let start = Instant::now();
    let end = start + duration;
    let before = procs.cpu_ticks();
    let inflight = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = start;
    while next < end {
        while next <= Instant::now() && next < end {
            next += interval;
            if inflight.load(Ordering::Relaxed) >= 64 {
                tally.record(
                    Duration::ZERO,
                    Err("generator behind: 64 requests in flight".into()),
                );
                continue;
            }
            let body = trace_batch(batch).encode_to_vec();
            let (client, tally, inflight, url) =
                (shared.clone(), tally.clone(), inflight.clone(), url.clone());
            inflight.fetch_add(1, Ordering::Relaxed);
            tasks.spawn(async move {
                let sent = Instant::now();
                let outcome = match client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(format!("send: {e}")),
                };
                tally.record(sent.elapsed(), outcome);
                inflight.fetch_sub(1, Ordering::Relaxed);
            });
        }
        while tasks.try_join_next().is_some() {}
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64();
    let after = procs.cpu_ticks();
    let cpu = procs.cpu_ms(&before, &after);
    let cpu_total: f64 = cpu.values().filter_map(Value::as_f64).sum();
    let mut latencies =
        std::mem::take(&mut *tally.latencies_us.lock().unwrap_or_else(|e| e.into_inner()));
    latencies.sort_unstable();
    let accepted = latencies.len() * batch;
    let refused = tally.errors.load(Ordering::Relaxed) as usize * batch;
    Ok(json!({
        "kind": "otlp",
        "target_spans_per_s": rate,
        "batch": batch,
        "seconds": elapsed,
        "accepted_spans": accepted,
        "refused_spans": refused,
        "first_error": *tally.first_error.lock().unwrap_or_else(|e| e.into_inner()),
        "accepted_spans_per_s": accepted as f64 / elapsed,
        "export_p99_ms": percentile(&latencies, 0.99),
        "cpu_ms": cpu,
        "cores_used": cpu_total / 1000.0 / elapsed,
        "spans_per_cpu_second": if cpu_total > 0.0 { accepted as f64 / (cpu_total / 1000.0) } else { f64::NAN },
        "rss_kb": procs.status_kb("VmRSS:"),
        "loadavg": loadavg(),
    }))
}

/// Sends `count` sampled requests, each with a trace id of its own, and receives the
/// services' OTLP export itself (standing where the collector's receiver is): the lag is
/// the time from a response until the last span of its trace arrived.
async fn freshness(args: &Args) -> Result<Value> {
    let url = args.req("url")?.to_owned();
    let listen = args.req("listen")?;
    let count: usize = args.num("count", 40)?;
    let interval = Duration::from_millis(args.num("interval-ms", 250)?);
    let settle = Duration::from_secs_f64(args.num("settle", 8.0)?);
    let receiver = otlp_receiver::OtlpReceiver::start_with(None, Some(listen), "")
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    // trace id -> (last span arrival, spans seen)
    let arrivals: Arc<Mutex<HashMap<String, (Instant, usize)>>> = Arc::default();
    let poller = {
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            loop {
                let received = receiver.drain();
                let now = Instant::now();
                {
                    let mut map = arrivals.lock().unwrap_or_else(|e| e.into_inner());
                    for span in received.spans {
                        let entry = map.entry(span.trace_id).or_insert((now, 0));
                        *entry = (now, entry.1 + 1);
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let http = client(1)?;
    let mut answered = Vec::new();
    for _ in 0..count {
        let trace_id: String = random_bytes::<16>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let parent: String = random_bytes::<8>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let response = http
            .get(&url)
            .header("traceparent", format!("00-{trace_id}-{parent}-01"))
            .send()
            .await?;
        let _ = response.bytes().await?;
        answered.push((trace_id, Instant::now()));
        tokio::time::sleep(interval).await;
    }
    tokio::time::sleep(settle).await;
    poller.abort();
    let map = arrivals.lock().unwrap_or_else(|e| e.into_inner());
    let mut lags_us = Vec::new();
    let mut spans = Vec::new();
    for (trace_id, answered_at) in &answered {
        if let Some((last, n)) = map.get(trace_id) {
            lags_us.push(last.saturating_duration_since(*answered_at).as_micros() as u32);
            spans.push(*n as u32);
        }
    }
    lags_us.sort_unstable();
    spans.sort_unstable();
    Ok(json!({
        "kind": "freshness",
        "requests": count,
        "traces_seen": lags_us.len(),
        "spans_per_trace_median": spans.get(spans.len() / 2),
        "p50_ms": percentile(&lags_us, 0.5),
        "p99_ms": percentile(&lags_us, 0.99),
        "max_ms": percentile(&lags_us, 1.0),
        "loadavg": loadavg(),
    }))
}
