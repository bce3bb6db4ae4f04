//! `otlp-sink`: the receiver as a process, standing where the collector exports to Tempo
//! and to Loki in the native stack. Those two are AGPL-licensed and never built here, so
//! the stack test asserts on exactly what they would receive: every span and log record
//! with its resource, and every export call's path and compression. It appends them as
//! JSON lines to `spans.jsonl`, `logs.jsonl` and `requests.jsonl` in `OTLP_SINK_DIR`.
//!
//! ```text
//! OTLP_SINK_GRPC=127.0.0.1:4417 OTLP_SINK_HTTP=127.0.0.1:4418 OTLP_SINK_DIR=tempo otlp-sink
//! OTLP_SINK_HTTP=127.0.0.1:3100 OTLP_SINK_HTTP_PREFIX=/otlp OTLP_SINK_DIR=loki otlp-sink
//! ```
//!
//! The HTTP listener serves `<OTLP_SINK_HTTP_PREFIX>/v1/{traces,metrics,logs}` and answers
//! 404 elsewhere, as the backend would (Loki's OTLP endpoint is `/otlp/v1/logs`).
#![forbid(unsafe_code)]

use anyhow::Context;
use otlp_receiver::{LogRecord, OtlpReceiver, Request, Span, Transport};
use serde_json::{Value, json};
use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

fn setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let grpc = setting("OTLP_SINK_GRPC");
    let http = setting("OTLP_SINK_HTTP");
    let prefix = setting("OTLP_SINK_HTTP_PREFIX").unwrap_or_default();
    let dir = PathBuf::from(setting("OTLP_SINK_DIR").context("OTLP_SINK_DIR is not set")?);
    anyhow::ensure!(
        grpc.is_some() || http.is_some(),
        "set OTLP_SINK_GRPC, OTLP_SINK_HTTP or both"
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let receiver = OtlpReceiver::start_with(grpc.as_deref(), http.as_deref(), &prefix)
        .await
        .with_context(|| format!("cannot listen on {grpc:?} / {http:?}"))?;
    eprintln!(
        "otlp-sink: gRPC {grpc:?}, HTTP {http:?} (paths {prefix}/v1/...), writing to {}",
        dir.display()
    );
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        let stop = tokio::select! {
            _ = tick.tick() => false,
            _ = tokio::signal::ctrl_c() => true,
        };
        let received = receiver.drain();
        let files = [
            ("spans.jsonl", lines(&received.spans, span_json)),
            ("logs.jsonl", lines(&received.logs, log_json)),
            ("requests.jsonl", lines(&received.requests, request_json)),
        ];
        // File I/O on the blocking pool, never on the runtime thread.
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || append(&dir, files)).await??;
        if stop {
            return Ok(());
        }
    }
}

fn append(dir: &Path, files: [(&str, String); 3]) -> std::io::Result<()> {
    for (file, text) in files.into_iter().filter(|(_, text)| !text.is_empty()) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(file))?
            .write_all(text.as_bytes())?;
    }
    Ok(())
}

fn lines<T>(items: &[T], to_json: fn(&T) -> Value) -> String {
    items
        .iter()
        .map(|item| format!("{}\n", to_json(item)))
        .collect()
}

fn span_json(span: &Span) -> Value {
    json!({
        "service": span.service_name,
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "status_code": span.status_code,
        "attributes": span.attributes,
        "links": span.links,
        "resource": span.resource,
    })
}

fn log_json(log: &LogRecord) -> Value {
    json!({
        "service": log.service_name,
        "trace_id": log.trace_id,
        "span_id": log.span_id,
        "severity": log.severity_text,
        "body": log.body,
        "attributes": log.attributes,
        "resource": log.resource,
    })
}

fn request_json(request: &Request) -> Value {
    json!({
        "signal": request.signal,
        "path": request.path,
        "encoding": request.encoding,
        "transport": match request.transport {
            Transport::Grpc => "grpc",
            Transport::HttpProtobuf => "http/protobuf",
        },
    })
}
