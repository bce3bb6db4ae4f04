//! The services' fault endpoints (`/admin/faults`, bearer token), which chaos uses to
//! break and heal service-b and service-d (see `service_runtime::faults`):
//!
//! ```text
//! GET    /admin/faults                        current settings
//! PUT    /admin/faults  {"route": "POST /events", "latency_ms": 0, "error_rate": 1.0}
//! PUT    /admin/faults  {"latency_ms": 300}     (no route: every route)
//! DELETE /admin/faults                        back to the environment's defaults
//! ```

use crate::shop::{AdminCall, Call, FaultTarget, Reply, RequestName, Route, Tag, send};
use goose::goose::{GooseUser, TransactionError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One fault, as the endpoint takes and shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Added latency.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of requests answered 503.
    #[serde(default)]
    pub error_rate: f64,
}

/// A service's settings, as `GET /admin/faults` shows them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FaultSettings {
    /// Every route without its own entry.
    #[serde(default)]
    pub default: Fault,
    /// Per route, keyed `"METHOD /template"`.
    #[serde(default)]
    pub routes: BTreeMap<String, Fault>,
}

/// Where a service's admin endpoint is, and its token.
#[derive(Debug, Clone)]
pub struct AdminEndpoint<'a> {
    /// The service.
    pub target: FaultTarget,
    /// Its base URL.
    pub base_url: &'a str,
    /// `ADMIN_TOKEN`.
    pub token: &'a str,
}

impl AdminEndpoint<'_> {
    async fn call(
        &self,
        user: &mut GooseUser,
        call: AdminCall,
        body: Option<String>,
    ) -> Result<(Reply, Option<FaultSettings>), Box<TransactionError>> {
        let url = format!("{}/admin/faults", self.base_url);
        let reply = send(
            user,
            Call {
                name: RequestName {
                    route: Route::Faults(self.target, call),
                    tag: Tag::Controller,
                },
                url: &url,
                body,
                expect_status: None,
                bearer: Some(self.token),
            },
        )
        .await?;
        let settings = if reply.is(200) { reply.json() } else { None };
        Ok((reply, settings))
    }

    /// `PUT`: `fault` on `route` (`"POST /events"`), or on every route without one.
    pub async fn set(
        &self,
        user: &mut GooseUser,
        route: Option<&str>,
        fault: Fault,
    ) -> Result<(Reply, Option<FaultSettings>), Box<TransactionError>> {
        let mut body = serde_json::json!({
            "latency_ms": fault.latency_ms,
            "error_rate": fault.error_rate,
        });
        if let Some(route) = route {
            body["route"] = route.into();
        }
        self.call(user, AdminCall::Set, Some(body.to_string()))
            .await
    }

    /// `DELETE`: back to the service's environment defaults.
    pub async fn reset(
        &self,
        user: &mut GooseUser,
    ) -> Result<(Reply, Option<FaultSettings>), Box<TransactionError>> {
        self.call(user, AdminCall::Reset, None).await
    }

    /// `GET`: the settings now.
    pub async fn show(
        &self,
        user: &mut GooseUser,
    ) -> Result<(Reply, Option<FaultSettings>), Box<TransactionError>> {
        self.call(user, AdminCall::Show, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_as_the_endpoint_shows_them() {
        let shown = r#"{"default":{"latency_ms":300,"error_rate":0.0},
                        "routes":{"POST /events":{"latency_ms":0,"error_rate":1.0}}}"#;
        let settings: FaultSettings = serde_json::from_str(shown).unwrap();
        assert_eq!(settings.default.latency_ms, 300);
        assert_eq!(settings.routes["POST /events"].error_rate, 1.0);
        let empty: FaultSettings = serde_json::from_str(r#"{"default":{}}"#).unwrap();
        assert!(empty.routes.is_empty());
    }
}
