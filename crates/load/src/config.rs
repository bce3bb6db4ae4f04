//! Settings from the environment, with the names the k6 scripts use
//! (`scripts/k6/lib/shop.js`), plus `CHAOS_DURATION`.
//!
//! An empty variable counts as unset, as `__ENV.X || default` does in the scripts. An
//! invalid value is a [`ConfigError`] that names the variable.

use std::time::Duration;

/// Everything the scenarios read from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `BASE_URL`: the gateway, the only public entry. Default `http://localhost:8080`.
    pub base_url: String,
    /// `SERVICE_B_ADMIN_URL`: service-b's admin base URL (chaos). Default `http://localhost:8082`.
    pub service_b_admin_url: String,
    /// `SERVICE_D_ADMIN_URL`: service-d's admin base URL (chaos). Default `http://localhost:8084`.
    pub service_d_admin_url: String,
    /// `ADMIN_TOKEN`: bearer token of `/admin/faults`; chaos refuses to start without it.
    pub admin_token: Option<String>,
    /// `LOAD_DURATION`: the whole load run, ramps included. Default 1 minute.
    pub load_duration: Duration,
    /// `LOAD_VUS`: peak shoppers of the load run. Default 10.
    pub load_vus: usize,
    /// `FRAUD_SHARE`: share of load iterations ordering as a `fraud...` customer. Default 0.05.
    pub fraud_share: f64,
    /// `FULFIL_TIMEOUT`: how long smoke waits for its order to be `fulfilled`. Default 30 s.
    pub fulfil_timeout: Duration,
    /// `CHAOS_VUS`: shoppers during chaos. Default 5.
    pub chaos_vus: usize,
    /// `SLOW_MS`: latency chaos adds to every service-d route. Default 300.
    pub slow_ms: u64,
    /// `CHAOS_DURATION`: the chaos timeline, every phase scaled to it. Default 150 s, as
    /// chaos.js; at least [`Settings::MIN_CHAOS_DURATION`].
    pub chaos_duration: Duration,
}

/// A variable that holds something the tool cannot use.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{name}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    /// The variable's name.
    pub name: &'static str,
    /// What it held.
    pub value: String,
    /// Why it was refused, with what would work.
    pub reason: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            base_url: "http://localhost:8080".into(),
            service_b_admin_url: "http://localhost:8082".into(),
            service_d_admin_url: "http://localhost:8084".into(),
            admin_token: None,
            load_duration: Duration::from_secs(60),
            load_vus: 10,
            fraud_share: 0.05,
            fulfil_timeout: Duration::from_secs(30),
            chaos_vus: 5,
            slow_ms: 300,
            chaos_duration: Duration::from_secs(150),
        }
    }
}

impl Settings {
    /// The shortest chaos timeline: below it the phases get too short to hold samples
    /// (the service-b recovery phase alone keeps at least 15 s, see `scenarios::chaos`).
    pub const MIN_CHAOS_DURATION: Duration = Duration::from_secs(45);

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let defaults = Self::default();
        let settings = Self {
            base_url: url(&get, "BASE_URL", defaults.base_url)?,
            service_b_admin_url: url(&get, "SERVICE_B_ADMIN_URL", defaults.service_b_admin_url)?,
            service_d_admin_url: url(&get, "SERVICE_D_ADMIN_URL", defaults.service_d_admin_url)?,
            admin_token: get("ADMIN_TOKEN"),
            load_duration: duration(&get, "LOAD_DURATION", defaults.load_duration)?,
            load_vus: positive(&get, "LOAD_VUS", defaults.load_vus)?,
            fraud_share: share(&get, "FRAUD_SHARE", defaults.fraud_share)?,
            fulfil_timeout: duration(&get, "FULFIL_TIMEOUT", defaults.fulfil_timeout)?,
            chaos_vus: positive(&get, "CHAOS_VUS", defaults.chaos_vus)?,
            slow_ms: positive(&get, "SLOW_MS", defaults.slow_ms as usize)? as u64,
            chaos_duration: duration(&get, "CHAOS_DURATION", defaults.chaos_duration)?,
        };
        if settings.chaos_duration < Self::MIN_CHAOS_DURATION {
            return Err(ConfigError {
                name: "CHAOS_DURATION",
                value: get("CHAOS_DURATION").unwrap_or_default(),
                reason: format!(
                    "the chaos timeline needs at least {}s",
                    Self::MIN_CHAOS_DURATION.as_secs()
                ),
            });
        }
        Ok(settings)
    }
}

fn url(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: String,
) -> Result<String, ConfigError> {
    let Some(value) = get(name) else {
        return Ok(default);
    };
    let trimmed = value.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(trimmed.to_string()),
        _ => Err(ConfigError {
            name,
            value,
            reason: "expected an http:// or https:// base URL, such as http://localhost:8080"
                .into(),
        }),
    }
}

fn duration(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(value) => parse_duration(&value).map_err(|reason| ConfigError {
            name,
            value,
            reason,
        }),
    }
}

fn positive(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: usize,
) -> Result<usize, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(value) => match value.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ConfigError {
                name,
                value,
                reason: "expected a positive integer".into(),
            }),
        },
    }
}

fn share(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: f64,
) -> Result<f64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(value) => match value.trim().parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
            _ => Err(ConfigError {
                name,
                value,
                reason: "expected a number from 0 to 1, such as 0.05".into(),
            }),
        },
    }
}

/// Parses a duration as the k6 scripts do (`parseDuration` in `lib/shop.js`): a plain
/// number of seconds (`90`, `1.5`), or number-unit parts with `h`, `m`, `s` and `ms`
/// (`1m30s`, `500ms`, `2h`). Zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const EXAMPLES: &str = "examples: 90s, 1m, 1m30s, 500ms, 45";
    let value = text.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return positive_seconds(seconds, value, EXAMPLES);
    }
    let mut total = 0.0;
    let mut rest = value;
    if rest.is_empty() {
        return Err(format!("empty duration ({EXAMPLES})"));
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("cannot parse duration {value:?} ({EXAMPLES})"))?;
        rest = &rest[number_len..];
        let (unit_seconds, unit_len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else {
            return Err(format!("cannot parse duration {value:?} ({EXAMPLES})"));
        };
        total += number * unit_seconds;
        rest = &rest[unit_len..];
    }
    positive_seconds(total, value, EXAMPLES)
}

fn positive_seconds(seconds: f64, value: &str, examples: &str) -> Result<Duration, String> {
    if seconds.is_finite() && seconds > 0.0 && seconds < 1e9 {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        Err(format!("duration {value:?} must be positive ({examples})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn durations_parse_like_the_k6_scripts() {
        let cases = [
            ("90", 90.0),
            ("1.5", 1.5),
            ("90s", 90.0),
            ("1m", 60.0),
            ("1m30s", 90.0),
            ("2h", 7200.0),
            ("500ms", 0.5),
            ("1m500ms", 60.5),
            (" 30s ", 30.0),
            ("0.5s", 0.5),
        ];
        for (text, seconds) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs_f64(seconds)),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_durations_are_refused() {
        for text in [
            "", "0", "0s", "-5", "1x", "s", "1m30", "m1", "1.2.3s", "NaN", "inf",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn defaults_match_the_k6_scripts() {
        let s = settings(&[]).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.base_url, "http://localhost:8080");
        assert_eq!(s.load_vus, 10);
        assert_eq!(s.chaos_duration, Duration::from_secs(150));
        assert_eq!(s.admin_token, None);
    }

    #[test]
    fn values_are_read_and_urls_trimmed() {
        let s = settings(&[
            ("BASE_URL", "http://127.0.0.1:18080/"),
            ("SERVICE_B_ADMIN_URL", "http://127.0.0.1:8082"),
            ("ADMIN_TOKEN", "secret"),
            ("LOAD_DURATION", "30s"),
            ("LOAD_VUS", "5"),
            ("FRAUD_SHARE", "0"),
            ("FULFIL_TIMEOUT", "1m"),
            ("CHAOS_VUS", "3"),
            ("SLOW_MS", "2500"),
            ("CHAOS_DURATION", "60s"),
            ("LOAD_VUS_UNUSED", "x"),
        ])
        .unwrap();
        assert_eq!(s.base_url, "http://127.0.0.1:18080");
        assert_eq!(s.admin_token.as_deref(), Some("secret"));
        assert_eq!(s.load_duration, Duration::from_secs(30));
        assert_eq!(s.load_vus, 5);
        assert_eq!(s.fraud_share, 0.0);
        assert_eq!(s.fulfil_timeout, Duration::from_secs(60));
        assert_eq!(s.chaos_vus, 3);
        assert_eq!(s.slow_ms, 2500);
        assert_eq!(s.chaos_duration, Duration::from_secs(60));
    }

    #[test]
    fn empty_counts_as_unset() {
        let s = settings(&[("LOAD_VUS", ""), ("BASE_URL", " ")]).unwrap();
        assert_eq!(s.load_vus, 10);
        assert_eq!(s.base_url, "http://localhost:8080");
    }

    #[test]
    fn an_invalid_value_names_its_variable() {
        let cases = [
            ("LOAD_VUS", "0"),
            ("LOAD_VUS", "ten"),
            ("CHAOS_VUS", "-1"),
            ("SLOW_MS", "1.5"),
            ("FRAUD_SHARE", "1.5"),
            ("LOAD_DURATION", "1 minute"),
            ("FULFIL_TIMEOUT", "0s"),
            ("CHAOS_DURATION", "30s"),
            ("BASE_URL", "localhost:8080"),
            ("SERVICE_D_ADMIN_URL", "ftp://x"),
        ];
        for (name, value) in cases {
            let err = settings(&[(name, value)]).unwrap_err();
            assert_eq!(err.name, name);
            assert!(err.to_string().starts_with(&format!("{name}=")), "{err}");
        }
    }
}
