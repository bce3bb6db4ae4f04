//! third-party-stub binary: plain JSON logs, no OpenTelemetry (it is not "ours").
#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .init();
    let shutdown = service_runtime::serve::shutdown_on_signal();
    match third_party_stub::run(service_runtime::env::process(), shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("third-party-stub: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
