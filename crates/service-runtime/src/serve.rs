//! Assembling a service's router and serving it until SIGTERM.
//!
//! Every service has the same outer shape: its business routes (with fault injection),
//! plus `/healthz`, `/readyz`, `/metrics` and `/admin/faults`. Auto-instrumented
//! services then get [`telemetry::HttpServerLayer`] around everything, added
//! last so it also sees 404s; manually instrumented ones make their spans by hand.

use crate::{
    env::{Env, ProcessLookup},
    faults::FaultInjector,
    health::Readiness,
};
use axum::{Router, middleware::from_fn_with_state};
use std::{
    fmt::Display, future::Future, net::SocketAddr, num::NonZeroUsize, process::ExitCode, sync::Arc,
    time::Duration,
};
use telemetry::{HttpServerLayer, MetricsRegistry};
use tokio::sync::Semaphore;
pub use tokio_util::sync::CancellationToken;

/// Why a service could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// An environment variable is missing or invalid (the message names it).
    #[error(transparent)]
    Config(#[from] crate::env::EnvError),
    /// The HTTP listener could not be bound or failed.
    #[error("cannot serve HTTP: {0}")]
    Serve(#[from] std::io::Error),
    /// A client or resource could not be created.
    #[error("cannot set up {what}: {source}")]
    Setup {
        /// What, for example `the Kafka producer`.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ServiceError {
    /// A failed setup step.
    pub fn setup(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Setup {
            what,
            source: Box::new(source),
        }
    }

    /// An invalid `DATABASE_URL`, printed without its password.
    pub fn invalid_database_url(url: &str, reason: impl Display) -> Self {
        Self::Config(crate::env::EnvError::Invalid {
            name: "DATABASE_URL".into(),
            value: telemetry::redact_url(url),
            reason: reason.to_string(),
        })
    }
}

/// Paths that are served but never traced or measured: probes and scrapes.
pub const UNOBSERVED_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The parts every service has.
#[derive(Clone)]
pub struct ServiceParts {
    /// The registry behind `/metrics`.
    pub metrics: MetricsRegistry,
    /// The checks behind `/readyz`.
    pub readiness: Readiness,
    /// Fault settings and the admin endpoint.
    pub faults: FaultInjector,
}

impl ServiceParts {
    /// `business` with fault injection, plus the health, metrics and admin routes.
    pub fn routes(&self, business: Router) -> Router {
        business
            .layer(from_fn_with_state(
                self.faults.clone(),
                FaultInjector::apply,
            ))
            .merge(self.readiness.clone().router())
            .merge(self.metrics.router())
            .merge(self.faults.admin_router())
    }

    /// [`Self::routes`] wrapped in the server instrumentation layer: the server side of
    /// auto-instrumentation in one line (outgoing calls add `HttpClientMiddleware`,
    /// queries `Statement`). The gateway writes it out to also capture a request header.
    pub fn auto_instrumented(&self, business: Router) -> Router {
        self.routes(business)
            .layer(HttpServerLayer::new(&self.metrics).skip_paths(&UNOBSERVED_PATHS))
    }
}

/// A token cancelled on SIGTERM or Ctrl-C; background tasks watch it to stop cleanly.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler can be installed");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested: finishing in-flight requests");
        trigger.cancel();
    });
    token
}

/// Serves `app` on `0.0.0.0:port` until `shutdown` is cancelled, then waits for
/// in-flight requests to finish.
///
/// Port 0 takes any free port. The `listening` log line names the port actually bound,
/// so a test harness can start many services side by side without racing for ports.
pub async fn serve(app: Router, port: u16, shutdown: CancellationToken) -> std::io::Result<()> {
    serve_with(app, port, shutdown, ServeOptions::default()).await
}

/// How [`serve_with`] treats connections.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Close a connection whose request headers (or next request, on a kept-alive
    /// connection) do not arrive within this time. `None`: wait forever, which lets
    /// slow clients that send a byte at a time hold connections open indefinitely.
    pub header_read_timeout: Option<Duration>,
    /// Serve at most this many connections at once. At the limit the server stops
    /// accepting: new clients wait in the kernel's backlog until a connection ends,
    /// instead of each costing a task, buffers and a file descriptor. `None`: no limit.
    pub max_connections: Option<NonZeroUsize>,
}

/// [`serve`] with options: the public entry (the gateway) bounds how long a client may
/// take to send its headers.
pub async fn serve_with(
    app: Router,
    port: u16,
    shutdown: CancellationToken,
    options: ServeOptions,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
    let port = listener.local_addr()?.port();
    tracing::info!(port, "listening");
    serve_on(listener, app, shutdown, options).await
}

async fn serve_on(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: CancellationToken,
    options: ServeOptions,
) -> std::io::Result<()> {
    // axum::serve gives hyper no timer, so hyper's header-read timeout never runs: this
    // is axum::serve's loop (HTTP/1, graceful shutdown) with a timer.
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let limit = options
        .max_connections
        .map(|max| Arc::new(Semaphore::new(max.get())));
    loop {
        let permit = match &limit {
            Some(limit) => tokio::select! {
                permit = limit.clone().acquire_owned() => match permit {
                    Ok(permit) => Some(permit),
                    Err(_closed) => break,
                },
                () = shutdown.cancelled() => break,
            },
            None => None,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: back off, keep serving.
                Err(error) => {
                    tracing::warn!(error = %error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = http.serve_connection(
            hyper_util::rt::TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(app.clone()),
        );
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            // A client that leaves, or a header-read timeout, ends its connection: nothing
            // to report. Its place under the limit is freed with it.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// The whole `main` of a service, in the order that matters for telemetry:
/// 1. `telemetry::init` first, so even a configuration error is logged (as JSON);
/// 2. the service runs until SIGTERM or Ctrl-C;
/// 3. telemetry is flushed last, within a bounded time, off the runtime threads.
///
/// A startup or runtime error is logged, printed as one line on stderr, and ends the
/// process with a failure code.
pub async fn run_service<Fut, E>(
    name: &str,
    run: impl FnOnce(Env<ProcessLookup>, CancellationToken) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let telemetry = match telemetry::init(name) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = run(crate::env::process(), shutdown_on_signal()).await;
    if let Err(error) = &result {
        tracing::error!(error = %error, "{name} stopped");
        eprintln!("{name}: {error:#}");
    }
    if let Err(error) = telemetry.shutdown().await {
        eprintln!("{name}: telemetry shutdown: {error}");
    }
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    async fn get(stream: &mut TcpStream) -> std::io::Result<String> {
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok(answer)
    }

    #[tokio::test]
    async fn at_the_connection_limit_a_new_client_waits_until_a_connection_ends() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", axum::routing::get(|| async { "served" }));
        let options = ServeOptions {
            header_read_timeout: None,
            max_connections: NonZeroUsize::new(2),
        };
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve_on(listener, app, shutdown.clone(), options));

        // Two clients that connect and send nothing take both places.
        let idle = TcpStream::connect(addr).await.unwrap();
        let _also_idle = TcpStream::connect(addr).await.unwrap();
        // A third connects (the kernel's backlog) but is not served while they stay.
        let mut third = TcpStream::connect(addr).await.unwrap();
        let mut waiting = tokio::spawn(async move { get(&mut third).await });
        let early = tokio::time::timeout(Duration::from_millis(500), &mut waiting).await;
        assert!(early.is_err(), "served beyond the limit: {early:?}");

        // One idle client leaves: its place goes to the waiting one.
        drop(idle);
        let answer = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("served once a place was free")
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("served"), "{answer}");

        shutdown.cancel();
        drop(_also_idle);
        server.await.unwrap().unwrap();
    }
}
