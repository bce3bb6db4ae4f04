//! service-d binary: see `service_runtime::serve::run_service` for the order of things
//! (telemetry first, then the service until SIGTERM, then a bounded telemetry flush).
#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> std::process::ExitCode {
    service_runtime::serve::run_service("service-d", service_d::run).await
}
