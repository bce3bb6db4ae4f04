//! The command line: `load <smoke|load|chaos> [--summary-json <path>]`. Everything else
//! comes from the environment (see [`crate::config`]); goose never sees the arguments.

use crate::scenarios::ScenarioKind;
use std::path::PathBuf;

/// The help text.
pub const USAGE: &str = "\
usage: load <smoke|load|chaos> [--summary-json <path>]

  smoke   one order end to end, then a rejected fraud order (scripts/k6/smoke.js)
  load    shoppers ramping up, holding, ramping down (scripts/k6/load.js)
  chaos   shoppers while service-b fails and service-d is slow (scripts/k6/chaos.js)

  --summary-json <path>   also write the summary as JSON to <path>

environment: BASE_URL (http://localhost:8080), SERVICE_B_ADMIN_URL (http://localhost:8082),
SERVICE_D_ADMIN_URL (http://localhost:8084), ADMIN_TOKEN (chaos), LOAD_DURATION (1m),
LOAD_VUS (10), FRAUD_SHARE (0.05), FULFIL_TIMEOUT (30s), CHAOS_VUS (5), SLOW_MS (300),
CHAOS_DURATION (150s, at least 45s)

exit status: 0 every threshold held, 1 a threshold failed or the run could not be judged,
2 usage or configuration error";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Print [`USAGE`].
    Help,
    /// Run a scenario.
    Run {
        /// Which one.
        scenario: ScenarioKind,
        /// Where to write the JSON summary.
        summary_json: Option<PathBuf>,
    },
}

/// A command line that makes no sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// Parses the arguments after the program name.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, UsageError> {
    let mut scenario = None;
    let mut summary_json = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" | "help" => return Ok(Command::Help),
            "--summary-json" => {
                let path = args
                    .next()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| UsageError("--summary-json needs a path".into()))?;
                summary_json = Some(PathBuf::from(path));
            }
            other if other.starts_with("--summary-json=") => {
                let path = &other["--summary-json=".len()..];
                if path.is_empty() {
                    return Err(UsageError("--summary-json needs a path".into()));
                }
                summary_json = Some(PathBuf::from(path));
            }
            other if other.starts_with('-') => {
                return Err(UsageError(format!("unknown option {other:?}")));
            }
            other => {
                if scenario.is_some() {
                    return Err(UsageError(format!("unexpected argument {other:?}")));
                }
                scenario = Some(other.parse::<ScenarioKind>().map_err(UsageError)?);
            }
        }
    }
    let scenario =
        scenario.ok_or_else(|| UsageError("which scenario? smoke, load or chaos".into()))?;
    Ok(Command::Run {
        scenario,
        summary_json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn scenario_and_summary_path() {
        assert_eq!(
            parse(&["chaos", "--summary-json", "/tmp/s.json"]),
            Ok(Command::Run {
                scenario: ScenarioKind::Chaos,
                summary_json: Some("/tmp/s.json".into())
            })
        );
        assert_eq!(
            parse(&["--summary-json=out.json", "smoke"]),
            Ok(Command::Run {
                scenario: ScenarioKind::Smoke,
                summary_json: Some("out.json".into())
            })
        );
        assert_eq!(
            parse(&["load"]),
            Ok(Command::Run {
                scenario: ScenarioKind::Load,
                summary_json: None
            })
        );
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for args in [
            &[][..],
            &["soak"],
            &["smoke", "load"],
            &["smoke", "--summary-json"],
            &["smoke", "--summary-json="],
            &["smoke", "-u", "10"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }
}
