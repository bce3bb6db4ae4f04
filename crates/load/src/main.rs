//! `load`: runs one scenario of the demo's load tool; see the `load` library.
#![forbid(unsafe_code)]

use anyhow::Context;
use load::cli::{Command, USAGE, parse_args};
use std::process::ExitCode;

const USAGE_ERROR: u8 = 2;
const THRESHOLD_FAILED: u8 = 1;

#[tokio::main]
async fn main() -> ExitCode {
    match real_main().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("load: error: {e:#}");
            ExitCode::from(THRESHOLD_FAILED)
        }
    }
}

async fn real_main() -> anyhow::Result<ExitCode> {
    let (scenario, summary_json) = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run {
            scenario,
            summary_json,
        }) => (scenario, summary_json),
        Ok(Command::Help) => {
            println!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => {
            eprintln!("load: {e}\n\n{USAGE}");
            return Ok(ExitCode::from(USAGE_ERROR));
        }
    };
    let settings = match load::Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("load: {e}");
            return Ok(ExitCode::from(USAGE_ERROR));
        }
    };
    let summary = match load::run(scenario, &settings).await {
        Ok(summary) => summary,
        Err(e) if e.is_usage() => {
            eprintln!("load: {e}");
            return Ok(ExitCode::from(USAGE_ERROR));
        }
        Err(e) => return Err(e).context(format!("{scenario} could not run")),
    };
    print!("{}", summary.render());
    if let Some(path) = &summary_json {
        summary
            .write_json(path)
            .with_context(|| format!("writing the summary to {}", path.display()))?;
        eprintln!("load: summary written to {}", path.display());
    }
    if summary.passed {
        Ok(ExitCode::SUCCESS)
    } else {
        for failed in summary.failed() {
            eprintln!("load: threshold failed: {}", failed.describe());
        }
        Ok(ExitCode::from(THRESHOLD_FAILED))
    }
}
