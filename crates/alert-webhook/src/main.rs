//! `alert-webhook` binary: the Alertmanager webhook receiver as a process (see the library's
//! documentation for its routes and variables). Logs are JSON lines on stdout, like the
//! third-party stub's, not OpenTelemetry: it is part of the monitoring, not of the app.
//!
//! ```text
//! alert-webhook                                   0.0.0.0:9097, in memory only
//! PORT=0 LISTEN_HOST=127.0.0.1 ALERT_WEBHOOK_DIR=/tmp/alerts alert-webhook
//! ```
//!
//! A setting it cannot use ends the process with status 1 and one line on stderr naming the
//! variable; SIGTERM or Ctrl-C ends it with status 0 once in-flight requests are answered.
#![forbid(unsafe_code)]

use std::{future::Future, process::ExitCode};
use tracing_subscriber::EnvFilter;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let shutdown = shutdown_requested();
    let outcome = match alert_webhook::Config::from_env() {
        Ok(config) => alert_webhook::run(config, shutdown)
            .await
            .map_err(|error| format!("{error:#}")),
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("alert-webhook: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGTERM (`docker stop`: as PID 1 the process gets no default handler) or
/// Ctrl-C. The handlers are installed at once, before the port is bound: a signal sent as
/// soon as `listening` is logged must not find the default action (death) in place.
fn shutdown_requested() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)))
    };
    async move {
        #[cfg(unix)]
        match handlers {
            Ok((mut term, mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "no SIGTERM handler: only Ctrl-C stops it");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested");
    }
}
