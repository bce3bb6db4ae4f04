//! What every demo service shares besides telemetry.
//!
//! - [`env`]: typed environment variables; a bad value names itself and stops startup;
//! - [`problem`]: RFC 9457 `application/problem+json` errors and a JSON extractor that
//!   turns bad input into 400/413/415/422 instead of a 500;
//! - [`health`]: `/healthz` (alive) and `/readyz` (dependencies reachable);
//! - [`faults`]: added latency and error rates per route, set from env or at runtime
//!   through a bearer-token admin endpoint, for demos and chaos tests;
//! - [`startup`]: retrying a setup step (migrations, connections) with backoff;
//! - [`backoff`]: the doubling wait between two retries, cut short by shutdown;
//! - `postgres` (feature `postgres`): a pool that connects lazily and migrations applied
//!   in the background, with their readiness;
//! - [`serve`]: assembles the standard routes and layers, serves with graceful shutdown
//!   on SIGTERM, and flushes telemetry last.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backoff;
pub mod env;
pub mod faults;
pub mod health;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod problem;
pub mod serve;
pub mod startup;
