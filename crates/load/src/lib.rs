//! A load tool for the demo, built on goose (Apache-2.0), so CI needs no k6 (AGPL).
//!
//! It drives the three scenarios of `scripts/k6` against the gateway, `smoke`, `load` and
//! `chaos`, and judges each run with thresholds as the scripts do: the `load` binary exits
//! 0 when every threshold held, 1 when one failed, 2 on a usage or configuration error.
//! Every request carries a fresh sampled W3C `traceparent`, so the load shows up as traces,
//! and a failed check names the trace to open.
//!
//! Modules:
//! - [`config`]: settings from the environment, the k6 scripts' variable names;
//! - [`cli`]: the command line (`load <scenario> [--summary-json <path>]`);
//! - [`scenarios`]: the three scenarios as goose scenarios and transactions, with their
//!   schedules and thresholds ([`scenarios::chaos`] also holds the chaos timeline);
//! - [`shop`]: the gateway's API as a shopper uses it, request names by route template;
//! - [`faults`]: the services' `/admin/faults` endpoints, which chaos drives;
//! - [`traceparent`]: the `traceparent` header of every request;
//! - [`checks`]: named assertions on responses, counted per group;
//! - [`thresholds`]: pass/fail rules on what a run measured;
//! - [`summary`]: the measurements, the console report and the `--summary-json` document;
//! - [`mod@run`]: configuring goose in code, executing the attack, judging it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checks;
pub mod cli;
pub mod config;
pub mod faults;
pub mod run;
pub mod scenarios;
pub mod shop;
pub mod summary;
pub mod thresholds;
pub mod traceparent;

pub use config::{ConfigError, Settings};
pub use run::{LoadError, run};
pub use scenarios::ScenarioKind;
pub use summary::Summary;
