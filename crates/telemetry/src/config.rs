//! Configuration read from the environment, validated once at startup.
//!
//! The OpenTelemetry SDK reads most `OTEL_*` variables itself (service name, resource,
//! sampler, batch sizes, endpoints). This module handles the ones the Rust SDK ignores or
//! only warns about, so that a typo stops the service with a message naming the variable
//! instead of silently exporting nothing.

use std::fmt;

/// A configuration value that is missing or cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The variable is set to a value this crate does not accept.
    #[error("environment variable {var}={value:?} is invalid: expected {expected}")]
    Invalid {
        /// The variable's name, for example `OTEL_PROPAGATORS`.
        var: &'static str,
        /// The value found.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
}

/// Wire protocol of one OTLP signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (collector port 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (collector port 4318); the spec's default.
    HttpProtobuf,
}

/// A propagator named in `OTEL_PROPAGATORS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropagatorKind {
    /// W3C Trace Context: `traceparent` and `tracestate`.
    TraceContext,
    /// W3C Baggage: `baggage`.
    Baggage,
}

/// How log records are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (the default; what Loki and `jq` want).
    Json,
    /// Human-readable text for a terminal.
    Pretty,
}

/// Everything [`crate::init`] needs beyond what the SDK reads for itself.
#[derive(Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// `service.name` used only when neither `OTEL_SERVICE_NAME` nor
    /// `OTEL_RESOURCE_ATTRIBUTES` names one: the environment always wins.
    pub fallback_service_name: String,
    /// True when the environment already names the service.
    pub service_name_from_env: bool,
    /// `OTEL_SDK_DISABLED=true`: no providers, no export; stdout logs still work.
    pub sdk_disabled: bool,
    /// `OTEL_PROPAGATORS`, in order; empty means `none`.
    pub propagators: Vec<PropagatorKind>,
    /// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub traces_protocol: OtlpProtocol,
    /// `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`, else the generic one.
    pub metrics_protocol: OtlpProtocol,
    /// `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`, else the generic one.
    pub logs_protocol: OtlpProtocol,
    /// `LOG_FORMAT`: `json` (default) or `pretty`.
    pub log_format: LogFormat,
    /// `RUST_LOG` directives, default `info`.
    pub log_filter: String,
}

impl fmt::Debug for TelemetryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryConfig")
            .field("fallback_service_name", &self.fallback_service_name)
            .field("sdk_disabled", &self.sdk_disabled)
            .field("propagators", &self.propagators)
            .field("traces_protocol", &self.traces_protocol)
            .field("metrics_protocol", &self.metrics_protocol)
            .field("logs_protocol", &self.logs_protocol)
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .finish()
    }
}

impl TelemetryConfig {
    /// Reads the process environment.
    pub fn from_env(fallback_service_name: &str) -> Result<Self, ConfigError> {
        Self::from_lookup(fallback_service_name, |name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(
        fallback_service_name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let non_empty = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let service_name_from_env = non_empty("OTEL_SERVICE_NAME").is_some()
            || non_empty("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|attrs| {
                attrs
                    .split(',')
                    .any(|kv| kv.trim_start().starts_with("service.name="))
            });

        let sdk_disabled = match non_empty("OTEL_SDK_DISABLED") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(ConfigError::Invalid {
                    var: "OTEL_SDK_DISABLED",
                    value: v,
                    expected: "true or false",
                });
            }
        };

        let propagators = parse_propagators(non_empty("OTEL_PROPAGATORS"))?;

        let generic = parse_protocol(
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            non_empty("OTEL_EXPORTER_OTLP_PROTOCOL"),
        )?
        .unwrap_or(OtlpProtocol::HttpProtobuf);
        let per_signal = |var: &'static str| -> Result<OtlpProtocol, ConfigError> {
            Ok(parse_protocol(var, non_empty(var))?.unwrap_or(generic))
        };

        let log_format = match non_empty("LOG_FORMAT").as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "LOG_FORMAT",
                    value: other.to_owned(),
                    expected: "json or pretty",
                });
            }
        };

        Ok(Self {
            fallback_service_name: fallback_service_name.to_owned(),
            service_name_from_env,
            sdk_disabled,
            propagators,
            traces_protocol: per_signal("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")?,
            metrics_protocol: per_signal("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")?,
            logs_protocol: per_signal("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL")?,
            log_format,
            log_filter: non_empty("RUST_LOG").unwrap_or_else(|| "info".to_owned()),
        })
    }
}

fn parse_protocol(
    var: &'static str,
    value: Option<String>,
) -> Result<Option<OtlpProtocol>, ConfigError> {
    match value.as_deref().map(str::trim) {
        None => Ok(None),
        Some("grpc") => Ok(Some(OtlpProtocol::Grpc)),
        Some("http/protobuf") => Ok(Some(OtlpProtocol::HttpProtobuf)),
        Some(other) => Err(ConfigError::Invalid {
            var,
            value: other.to_owned(),
            expected: "grpc or http/protobuf",
        }),
    }
}

fn parse_propagators(value: Option<String>) -> Result<Vec<PropagatorKind>, ConfigError> {
    let Some(value) = value else {
        return Ok(vec![PropagatorKind::TraceContext, PropagatorKind::Baggage]);
    };
    let mut kinds = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = match name {
            "tracecontext" => PropagatorKind::TraceContext,
            "baggage" => PropagatorKind::Baggage,
            "none" => continue,
            _ => {
                return Err(ConfigError::Invalid {
                    var: "OTEL_PROPAGATORS",
                    value: value.clone(),
                    expected: "a comma-separated list of tracecontext, baggage, none",
                });
            }
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<TelemetryConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TelemetryConfig::from_lookup("fallback-svc", |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = config(&[]).unwrap();
        assert!(!c.sdk_disabled);
        assert!(!c.service_name_from_env);
        assert_eq!(
            c.propagators,
            vec![PropagatorKind::TraceContext, PropagatorKind::Baggage]
        );
        assert_eq!(c.traces_protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.log_filter, "info");
    }

    #[test]
    fn per_signal_protocol_overrides_the_generic_one() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        assert_eq!(c.traces_protocol, OtlpProtocol::Grpc);
        assert_eq!(c.metrics_protocol, OtlpProtocol::Grpc);
        assert_eq!(c.logs_protocol, OtlpProtocol::HttpProtobuf);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp"),
            ("OTEL_SDK_DISABLED", "yes"),
            ("OTEL_PROPAGATORS", "tracecontext,b3"),
            ("LOG_FORMAT", "xml"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert!(err.to_string().contains(var), "{err}");
            assert!(err.to_string().contains(value), "{err}");
        }
    }

    #[test]
    fn sdk_disabled_is_case_insensitive() {
        assert!(
            config(&[("OTEL_SDK_DISABLED", "TRUE")])
                .unwrap()
                .sdk_disabled
        );
        assert!(
            !config(&[("OTEL_SDK_DISABLED", "false")])
                .unwrap()
                .sdk_disabled
        );
    }

    #[test]
    fn propagators_none_and_duplicates() {
        assert!(
            config(&[("OTEL_PROPAGATORS", "none")])
                .unwrap()
                .propagators
                .is_empty()
        );
        assert_eq!(
            config(&[("OTEL_PROPAGATORS", "baggage, baggage,tracecontext")])
                .unwrap()
                .propagators,
            vec![PropagatorKind::Baggage, PropagatorKind::TraceContext]
        );
    }

    #[test]
    fn service_name_from_env_is_detected_in_both_variables() {
        assert!(
            config(&[("OTEL_SERVICE_NAME", "svc")])
                .unwrap()
                .service_name_from_env
        );
        assert!(
            config(&[("OTEL_RESOURCE_ATTRIBUTES", "a=b, service.name=svc")])
                .unwrap()
                .service_name_from_env
        );
        assert!(
            !config(&[("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=dev")])
                .unwrap()
                .service_name_from_env
        );
    }
}
