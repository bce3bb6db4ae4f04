//! `otlp-sink`: the receiver as a process that appends every span it receives to a JSON-lines
//! file. The native stack test uses it in Tempo's place where no Tempo binary can be built (Tempo
//! 3 is not published on the Go module proxy), so the collector's trace pipeline, tail sampling
//! included, is still checked on exactly what it exports.
//!
//!   OTLP_SINK_GRPC=127.0.0.1:4417 OTLP_SINK_HTTP=127.0.0.1:4418 OTLP_SINK_OUT=spans.jsonl otlp-sink
#![forbid(unsafe_code)]

use anyhow::Context;
use std::{io::Write, time::Duration};

fn setting(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let grpc = setting("OTLP_SINK_GRPC")?;
    let http = setting("OTLP_SINK_HTTP")?;
    let out = setting("OTLP_SINK_OUT")?;
    let receiver = otlp_receiver::OtlpReceiver::start_on(&grpc, &http)
        .await
        .with_context(|| format!("cannot listen on {grpc} / {http}"))?;
    eprintln!("otlp-sink: gRPC {grpc}, HTTP {http}, spans to {out}");
    let mut written = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let spans = receiver.spans();
        if spans.len() == written {
            continue;
        }
        let mut text = String::new();
        for span in &spans[written..] {
            let line = serde_json::json!({
                "service": span.service_name,
                "trace_id": span.trace_id,
                "span_id": span.span_id,
                "parent_span_id": span.parent_span_id,
                "name": span.name,
                "kind": span.kind,
                "status_code": span.status_code,
                "attributes": span.attributes,
                "links": span.links,
            });
            text.push_str(&format!("{line}\n"));
        }
        // File I/O on the blocking pool, never on the runtime thread.
        let path = out.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?
                .write_all(text.as_bytes())
        })
        .await??;
        written = spans.len();
    }
    Ok(())
}
