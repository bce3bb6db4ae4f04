//! Shared OpenTelemetry setup for the demo services: the crate a reader copies.
//!
//! The whole public API fits on a page. Each item teaches one thing:
//!
//! | item | what it gives a service |
//! |---|---|
//! | [`init`] → [`TelemetryGuard`] | traces, metrics and logs over OTLP from the `OTEL_*` variables, JSON logs with trace ids on stdout; the guard flushes within [`SHUTDOWN_TIMEOUT`] |
//! | [`HttpServerLayer`] | **auto** server instrumentation: one tower layer makes the SERVER span, the RED histogram with exemplars, the access log and `traceresponse` |
//! | [`HttpClientMiddleware`] | **auto** client instrumentation: the CLIENT span and W3C headers on every reqwest call |
//! | [`Statement`] | a database CLIENT span per query, declared once next to its SQL (sqlx emits none) |
//! | `kafka` (feature `kafka`) | the trace context in Kafka message headers, both ways |
//! | [`MetricsRegistry`] | the `/metrics` endpoint whose exemplars always resolve to a kept trace |
//! | [`breaker`] | a circuit breaker whose state changes are logs, span events and metrics |
//! | [`manual`] | the parts [`HttpServerLayer`] is made of, for a server span written by hand |
//! | [`redact_url`] | a URL fit for a log line (no password, no secret query values) |
//! | `testing` (feature `testing`) | an in-memory trace pipeline and a log sink for tests |
//!
//! *Auto* means `tracing` spans, made by a layer or middleware around your code and bridged
//! to OpenTelemetry; *manual* means calling the OpenTelemetry API by hand (service-b does,
//! through [`manual`]). Both give the same spans: `examples/auto.rs` and
//! `examples/manual.rs` are the smallest complete service in each style.
//!
//! Everything else (the OTLP pipeline, propagation, redaction processors, the exemplar
//! histogram, the breaker's state machine) is private and reached through these items.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod breaker;
mod config;
mod db;
mod export_health;
mod http_client;
mod http_server;
#[cfg(feature = "kafka")]
pub mod kafka;
mod logs;
mod metrics;
mod propagation;
mod redaction;
mod stdout;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use config::ConfigError;
pub use db::Statement;
pub use http_client::HttpClientMiddleware;
pub use http_server::HttpServerLayer;
pub use metrics::MetricsRegistry;
pub use redaction::redact_url;

/// The pieces of [`HttpServerLayer`], for a server span made by hand with the
/// OpenTelemetry API (as service-b does): read the W3C headers, record the RED
/// histogram and its exemplar mark, answer with `traceresponse`.
pub mod manual {
    pub use crate::http_server::{TRACERESPONSE, traceresponse};
    pub use crate::metrics::{
        EXEMPLAR_ATTRIBUTE, HttpServerLabels, HttpServerMetrics, method_label,
    };
    pub use crate::propagation::HeaderExtractor;
}

use config::{LogFormat, OtlpProtocol, TelemetryConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::{
    ExporterBuildError, LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig,
};
use opentelemetry_sdk::{
    Resource,
    logs::{BatchLogProcessor, SdkLoggerProvider},
    metrics::{PeriodicReader, SdkMeterProvider},
    trace::{BatchSpanProcessor, SdkTracerProvider},
};
use redaction::{RedactingLogProcessor, RedactingSpanProcessor};
use std::time::Duration;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, filter::filter_fn, layer::Layered, layer::SubscriberExt,
    util::SubscriberInitExt,
};

/// Upper bound on flushing all three signals at shutdown.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why telemetry could not be started.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// An environment variable is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `RUST_LOG` does not parse.
    #[error("environment variable RUST_LOG={value:?} is invalid: {reason}")]
    LogFilter {
        /// The directives found.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// An OTLP exporter could not be built (for example a malformed endpoint URL).
    #[error("cannot build the OTLP {signal} exporter: {source}")]
    Exporter {
        /// `traces`, `metrics` or `logs`.
        signal: &'static str,
        /// The exporter's error.
        source: ExporterBuildError,
    },
    /// The gRPC exporter needs a Tokio runtime to run its channel.
    #[error("telemetry::init must run inside a Tokio runtime when an OTLP protocol is grpc")]
    NoTokioRuntime,
    /// Another global `tracing` subscriber was installed first.
    #[error("a global tracing subscriber is already installed")]
    SubscriberAlreadySet,
}

/// Why shutdown did not flush everything.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// One or more providers reported an error (typically: the collector is unreachable).
    #[error("telemetry shutdown reported errors: {0}")]
    Provider(String),
    /// Flushing took longer than the bound; the rest is dropped.
    #[error("telemetry shutdown did not finish within {0:?}")]
    TimedOut(Duration),
}

/// Starts traces, metrics and logs for a service, reading the environment.
///
/// `service_name` is the fallback `service.name`: `OTEL_SERVICE_NAME` or a `service.name`
/// in `OTEL_RESOURCE_ATTRIBUTES` wins over it. Call it once, early in `main`, inside the
/// Tokio runtime, and keep the guard until the end.
pub fn init(service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    init_with_config(TelemetryConfig::from_env(service_name)?)
}

fn init_with_config(config: TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    propagation::install(&config.propagators);
    let filter = EnvFilter::try_new(&config.log_filter).map_err(|e| TelemetryError::LogFilter {
        value: config.log_filter.clone(),
        reason: e.to_string(),
    })?;

    // stdout is written by a thread of its own, in batches (src/stdout.rs), so a slow
    // reader of the pipe (a full terminal, a stalled log shipper) never blocks a request and
    // a line costs no wake-up; lines beyond its buffer are dropped and counted
    // (`telemetry.stdout.dropped_lines`), never waited for.
    let (stdout, stdout_flusher) = stdout::batched(std::io::stdout());
    let dropped_lines = stdout.clone();
    let mut layers: Vec<BoxedLayer> = vec![stdout_layer(config.log_format, stdout)];
    let providers = if config.sdk_disabled {
        // No provider is installed: the global tracer and meter stay no-ops, so spans
        // and metrics cost a few branch checks and nothing is exported.
        None
    } else {
        let providers = Providers::from_config(&config)?;
        opentelemetry::global::set_tracer_provider(providers.tracer.clone());
        opentelemetry::global::set_meter_provider(providers.meter.clone());
        opentelemetry::global::meter("telemetry")
            .u64_observable_counter("telemetry.stdout.dropped_lines")
            .with_description("Log lines not written to stdout because its buffer was full.")
            .with_callback(move |counter| counter.observe(dropped_lines.dropped_lines(), &[]))
            .build();
        layers.push(span_bridge(providers.tracer.tracer("telemetry")).boxed());
        // The exporters' own logs must not be exported again (a feedback loop).
        layers.push(
            OpenTelemetryTracingBridge::new(&providers.logger)
                .with_filter(filter_fn(|meta| !is_export_internal(meta.target())))
                .boxed(),
        );
        Some(providers)
    };

    tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init()
        .map_err(|_| TelemetryError::SubscriberAlreadySet)?;
    Ok(TelemetryGuard {
        providers,
        stdout_flusher: Some(stdout_flusher),
    })
}

/// The layer that turns `tracing` spans into OpenTelemetry spans (what "auto" rests on).
///
/// Off are its extras that are not HTTP semantic conventions or that a manual span could
/// not carry the same way: `busy_ns`/`idle_ns`, `target`, and the `code.*` and `thread.*`
/// attributes (which name this crate's file for every layer-made span: no help to a
/// reader, and five attributes more per span to export). The access-log line stays a log
/// record only: as a span event it would repeat the span it sits on.
pub(crate) fn span_bridge<S>(
    tracer: opentelemetry_sdk::trace::SdkTracer,
) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + Send + Sync + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_location(false)
        .with_threads(false)
        .with_filter(filter_fn(|meta| {
            !(meta.is_event() && meta.target() == http_server::ACCESS_LOG_TARGET)
        }))
}

type BoxedLayer = Box<dyn Layer<Layered<EnvFilter, Registry>> + Send + Sync>;

fn stdout_layer(format: LogFormat, stdout: stdout::BatchedWriter) -> BoxedLayer {
    match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(logs::SkipSpanFields)
            .event_format(logs::JsonLogFormat)
            .with_writer(stdout)
            .boxed(),
        LogFormat::Pretty => {
            use tracing_subscriber::field::MakeExt;
            // The default field formatter would print secrets as they are.
            let fields = tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
                if field.name() == "message" {
                    write!(writer, "{value:?}")
                } else if redaction::is_secret_name(field.name()) {
                    write!(writer, "{field}={}", redaction::REDACTED)
                } else {
                    write!(writer, "{field}={value:?}")
                }
            })
            .delimited(" ");
            tracing_subscriber::fmt::layer()
                .fmt_fields(fields)
                // Colours only on a terminal, never in files or pipes.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .with_writer(stdout)
                .boxed()
        }
    }
}

fn is_export_internal(target: &str) -> bool {
    ["opentelemetry", "hyper", "h2", "tonic", "tower", "reqwest"]
        .iter()
        .any(|prefix| target.starts_with(prefix))
}

struct Providers {
    tracer: SdkTracerProvider,
    meter: SdkMeterProvider,
    logger: SdkLoggerProvider,
}

impl Providers {
    fn from_config(config: &TelemetryConfig) -> Result<Self, TelemetryError> {
        let uses_grpc = [
            config.traces_protocol,
            config.metrics_protocol,
            config.logs_protocol,
        ]
        .contains(&OtlpProtocol::Grpc);
        if uses_grpc && tokio::runtime::Handle::try_current().is_err() {
            return Err(TelemetryError::NoTokioRuntime);
        }
        let resource = {
            // Resource::builder() already reads OTEL_SERVICE_NAME and
            // OTEL_RESOURCE_ATTRIBUTES; the code's name is only a fallback.
            let builder = Resource::builder();
            if config.service_name_from_env {
                builder.build()
            } else {
                builder
                    .with_service_name(config.fallback_service_name.clone())
                    .build()
            }
        };
        let exporter_error = |signal| move |source| TelemetryError::Exporter { signal, source };

        let span_exporter = match config.traces_protocol {
            OtlpProtocol::Grpc => SpanExporter::builder().with_tonic().build(),
            OtlpProtocol::HttpProtobuf => SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .build(),
        }
        .map_err(exporter_error("traces"))?;
        let metric_exporter = match config.metrics_protocol {
            OtlpProtocol::Grpc => MetricExporter::builder().with_tonic().build(),
            OtlpProtocol::HttpProtobuf => MetricExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .build(),
        }
        .map_err(exporter_error("metrics"))?;
        let log_exporter = match config.logs_protocol {
            OtlpProtocol::Grpc => LogExporter::builder().with_tonic().build(),
            OtlpProtocol::HttpProtobuf => LogExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .build(),
        }
        .map_err(exporter_error("logs"))?;

        // Wrapped to count what they fail to deliver (`telemetry.export.dropped`).
        let dropped = std::sync::Arc::new(export_health::Dropped::default());
        let span_exporter = export_health::CountingSpanExporter {
            inner: span_exporter,
            dropped: dropped.clone(),
        };
        let log_exporter = export_health::CountingLogExporter {
            inner: log_exporter,
            dropped: dropped.clone(),
        };

        // Batch processors and the periodic reader run on their own threads, read
        // OTEL_BSP_*, OTEL_BLRP_* and OTEL_METRIC_EXPORT_INTERVAL, and drop (never block)
        // when their bounded queues are full. The sampler comes from OTEL_TRACES_SAMPLER.
        let tracer = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_span_processor(RedactingSpanProcessor::new(
                BatchSpanProcessor::builder(span_exporter).build(),
            ))
            .build();
        let meter = SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_reader(PeriodicReader::builder(metric_exporter).build())
            .build();
        dropped.register(&opentelemetry::metrics::MeterProvider::meter(
            &meter,
            "telemetry",
        ));
        let logger = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_log_processor(RedactingLogProcessor::new(
                BatchLogProcessor::builder(log_exporter).build(),
            ))
            .build();
        Ok(Self {
            tracer,
            meter,
            logger,
        })
    }

    /// Shuts the three providers down in parallel on plain threads, each bounded.
    fn shutdown(self, timeout: Duration) -> Result<(), ShutdownError> {
        let Providers {
            tracer,
            meter,
            logger,
        } = self;
        let errors: Vec<String> = std::thread::scope(|scope| {
            let handles = [
                scope.spawn(|| {
                    tracer
                        .shutdown_with_timeout(timeout)
                        .map_err(|e| format!("traces: {e}"))
                }),
                scope.spawn(|| {
                    logger
                        .shutdown_with_timeout(timeout)
                        .map_err(|e| format!("logs: {e}"))
                }),
                scope.spawn(|| {
                    meter
                        .shutdown_with_timeout(timeout)
                        .map_err(|e| format!("metrics: {e}"))
                }),
            ];
            handles
                .into_iter()
                .filter_map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("shutdown thread panicked".into()))
                        .err()
                })
                .collect()
        });
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ShutdownError::Provider(errors.join("; ")))
        }
    }
}

/// Keeps the providers alive; [`TelemetryGuard::shutdown`] flushes them.
#[must_use = "dropping the guard at once shuts telemetry down"]
pub struct TelemetryGuard {
    providers: Option<Providers>,
    /// Dropping it writes out the buffered stdout lines (blocking: never on a worker).
    stdout_flusher: Option<stdout::Flusher>,
}

impl TelemetryGuard {
    /// True unless `OTEL_SDK_DISABLED=true`.
    pub fn is_exporting(&self) -> bool {
        self.providers.is_some()
    }

    /// Flushes and stops traces, logs and metrics, then stdout, within [`SHUTDOWN_TIMEOUT`].
    ///
    /// The blocking shutdown runs on Tokio's blocking pool, never on a runtime worker: on
    /// a current-thread runtime that would deadlock and lose the last spans.
    pub async fn shutdown(mut self) -> Result<(), ShutdownError> {
        let flush = self.take_flush();
        let task = tokio::task::spawn_blocking(flush);
        // The metrics provider ignores its timeout, so bound the whole thing here too.
        match tokio::time::timeout(SHUTDOWN_TIMEOUT + Duration::from_secs(1), task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join_error)) => Err(ShutdownError::Provider(join_error.to_string())),
            Err(_) => Err(ShutdownError::TimedOut(SHUTDOWN_TIMEOUT)),
        }
    }

    /// The blocking work of a shutdown: the providers first (their last errors are logged),
    /// then the stdout writer.
    fn take_flush(&mut self) -> impl FnOnce() -> Result<(), ShutdownError> + Send + 'static {
        let (providers, stdout_flusher) = (self.providers.take(), self.stdout_flusher.take());
        move || {
            let result = providers.map_or(Ok(()), |p| p.shutdown(SHUTDOWN_TIMEOUT));
            drop(stdout_flusher);
            result
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if self.providers.is_none() && self.stdout_flusher.is_none() {
            return;
        }
        // Not shut down explicitly (an early return or a panic): flush on a plain thread.
        // Outside a runtime wait for it; inside one, never block a worker.
        let flusher = std::thread::spawn(self.take_flush());
        if tokio::runtime::Handle::try_current().is_err() {
            let _ = flusher.join();
        }
    }
}
