//! service-a settings, all from the environment.

use service_runtime::env::{Env, EnvError};
use std::time::Duration;
use telemetry::breaker::BreakerConfig;

/// Every setting of service-a (README has the table).
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`, default 8081.
    pub port: u16,
    /// `DATABASE_URL`, default `postgres://demo:demo@127.0.0.1:5432/orders`.
    pub database_url: String,
    /// `SERVICE_B_URL`, default `http://127.0.0.1:8082`.
    pub service_b_url: String,
    /// `SERVICE_D_URL`, default `http://127.0.0.1:8084`.
    pub service_d_url: String,
    /// `THIRD_PARTY_URL`, default `http://127.0.0.1:8090`.
    pub third_party_url: String,
    /// `THIRD_PARTY_TIMEOUT_MS` per attempt, default 800.
    pub third_party_timeout: Duration,
    /// `THIRD_PARTY_RETRIES` after the first attempt, default 2.
    pub third_party_retries: u32,
    /// `DOWNSTREAM_TIMEOUT_MS` for service-b and service-d calls, default 2000.
    pub downstream_timeout: Duration,
    /// `BREAKER_FAILURE_THRESHOLD` (default 5) and `BREAKER_OPEN_MS` (default 10000).
    pub breaker: BreakerConfig,
    /// `OUTBOX_RELAY_INTERVAL_MS`, default 1000.
    pub relay_interval: Duration,
    /// `OUTBOX_RELAY_MIN_AGE_MS`: the relay leaves younger events to the request that
    /// wrote them, default 2000.
    pub relay_min_age: Duration,
}

impl Config {
    /// Reads the settings; a bad value names its variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, EnvError> {
        Ok(Self {
            port: env.or("PORT", 8081)?,
            database_url: env
                .string_or("DATABASE_URL", "postgres://demo:demo@127.0.0.1:5432/orders"),
            service_b_url: env.string_or("SERVICE_B_URL", "http://127.0.0.1:8082"),
            service_d_url: env.string_or("SERVICE_D_URL", "http://127.0.0.1:8084"),
            third_party_url: env.string_or("THIRD_PARTY_URL", "http://127.0.0.1:8090"),
            third_party_timeout: env
                .millis_or("THIRD_PARTY_TIMEOUT_MS", Duration::from_millis(800))?,
            third_party_retries: env.or("THIRD_PARTY_RETRIES", 2)?,
            downstream_timeout: env
                .millis_or("DOWNSTREAM_TIMEOUT_MS", Duration::from_millis(2000))?,
            breaker: BreakerConfig {
                failure_threshold: env.or("BREAKER_FAILURE_THRESHOLD", 5)?,
                open_for: env.millis_or("BREAKER_OPEN_MS", Duration::from_secs(10))?,
                half_open_probes: 1,
            },
            relay_interval: env.millis_or("OUTBOX_RELAY_INTERVAL_MS", Duration::from_secs(1))?,
            relay_min_age: env.millis_or("OUTBOX_RELAY_MIN_AGE_MS", Duration::from_secs(2))?,
        })
    }
}
