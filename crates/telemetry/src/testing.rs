//! Test helpers for crates that use this one (feature `testing`): a log sink that reads
//! back the services' JSON log lines, the W3C propagators, and a process-wide in-memory
//! trace pipeline.

use crate::config::PropagatorKind;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::{Layer, layer::SubscriberExt, registry::LookupSpan};

/// A `MakeWriter` that keeps what a `tracing_subscriber::fmt` layer writes, so a test can
/// read the log lines back.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A layer writing the services' JSON log lines (trace ids, redaction) into this sink.
    pub fn json_layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_subscriber::fmt::layer()
            .event_format(crate::logs::JsonLogFormat)
            .with_writer(self.clone())
    }

    /// Every JSON object written so far, one per line (other lines are skipped).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the W3C Trace Context and Baggage propagators globally, as `init` does by
/// default.
pub fn install_w3c_propagators() {
    crate::propagation::install(&[PropagatorKind::TraceContext, PropagatorKind::Baggage]);
}

/// One pipeline per test process, installed on first use: an in-memory exporter
/// (exported at span end) behind both `tracing` spans and the global OpenTelemetry tracer
/// (for manual spans), the services' JSON log lines into [`pipeline_logs`], and the W3C
/// propagators. Returns the exporter to read spans from.
pub fn in_memory_tracing() -> &'static InMemorySpanExporter {
    &pipeline().0
}

/// The JSON log lines written while [`in_memory_tracing`]'s pipeline is installed.
pub fn pipeline_logs() -> &'static CapturedLogs {
    &pipeline().1
}

fn pipeline() -> &'static (InMemorySpanExporter, CapturedLogs) {
    static PIPELINE: OnceLock<(InMemorySpanExporter, CapturedLogs)> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let logs = CapturedLogs::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(crate::span_bridge(provider.tracer("test")))
            .with(logs.json_layer());
        tracing::subscriber::set_global_default(subscriber)
            .expect("in_memory_tracing: another global subscriber is already installed");
        opentelemetry::global::set_tracer_provider(provider);
        install_w3c_propagators();
        (exporter, logs)
    })
}
