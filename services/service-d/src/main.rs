//! service-d binary: telemetry first, then the service, then a bounded telemetry flush.
#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = telemetry::init("service-d")?;
    let shutdown = service_runtime::serve::shutdown_on_signal();
    let result = service_d::run(service_runtime::env::process(), shutdown).await;
    if let Err(error) = &result {
        tracing::error!(error = %error, "service-d stopped");
    }
    if let Err(error) = telemetry.shutdown().await {
        eprintln!("telemetry shutdown: {error}");
    }
    result
}
