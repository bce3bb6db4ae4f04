//! Typed environment variables. A missing or invalid value is an error naming the variable.

use std::{fmt::Display, str::FromStr, time::Duration};

/// A variable that is missing or does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    /// Required and not set.
    #[error("environment variable {0} is required but not set")]
    Missing(String),
    /// Set to something unusable.
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Reads variables through a lookup function, so tests need not touch the process env.
pub struct Env<F> {
    lookup: F,
}

/// How [`process`] looks variables up.
pub type ProcessLookup = fn(&str) -> Option<String>;

/// The process environment.
pub fn process() -> Env<ProcessLookup> {
    Env::new(|name: &str| std::env::var(name).ok())
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// An environment backed by `lookup`.
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// A required value.
    pub fn required<T: FromStr>(&self, name: &str) -> Result<T, EnvError>
    where
        T::Err: Display,
    {
        let value = self
            .raw(name)
            .ok_or_else(|| EnvError::Missing(name.to_owned()))?;
        parse(name, value)
    }

    /// An optional value with a default.
    pub fn or<T: FromStr>(&self, name: &str, default: T) -> Result<T, EnvError>
    where
        T::Err: Display,
    {
        match self.raw(name) {
            Some(value) => parse(name, value),
            None => Ok(default),
        }
    }

    /// A string with a default.
    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or_else(|| default.to_owned())
    }

    /// A duration given in milliseconds (`*_MS` variables), with a default.
    pub fn millis_or(&self, name: &str, default: Duration) -> Result<Duration, EnvError> {
        Ok(Duration::from_millis(
            self.or(name, default.as_millis() as u64)?,
        ))
    }

    /// A value between 0.0 and 1.0 (rates, probabilities), with a default.
    pub fn ratio_or(&self, name: &str, default: f64) -> Result<f64, EnvError> {
        let value: f64 = self.or(name, default)?;
        if (0.0..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(EnvError::Invalid {
                name: name.to_owned(),
                value: value.to_string(),
                reason: "must be between 0 and 1".into(),
            })
        }
    }
}

fn parse<T: FromStr>(name: &str, value: String) -> Result<T, EnvError>
where
    T::Err: Display,
{
    value.trim().parse().map_err(|e: T::Err| EnvError::Invalid {
        name: name.to_owned(),
        reason: e.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env::new(move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn values_defaults_and_errors_that_name_the_variable() {
        let e = env(&[
            ("PORT", "8081"),
            ("BAD_PORT", "80x"),
            ("RATE", "1.5"),
            ("EMPTY", " "),
        ]);
        assert_eq!(e.required::<u16>("PORT"), Ok(8081));
        assert_eq!(e.or::<u16>("OTHER_PORT", 9), Ok(9));
        assert_eq!(e.or::<u16>("EMPTY", 7), Ok(7), "blank counts as unset");
        let err = e.or::<u16>("BAD_PORT", 1).unwrap_err();
        assert!(err.to_string().contains("BAD_PORT") && err.to_string().contains("80x"));
        assert_eq!(
            e.required::<u16>("NOPE"),
            Err(EnvError::Missing("NOPE".into()))
        );
        assert!(
            e.ratio_or("RATE", 0.0)
                .unwrap_err()
                .to_string()
                .contains("RATE")
        );
        assert_eq!(
            e.millis_or("T_MS", Duration::from_millis(5)),
            Ok(Duration::from_millis(5))
        );
    }
}
