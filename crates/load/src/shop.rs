//! The shop behind the gateway, as a shopper uses it: the port of `scripts/k6/lib/shop.js`.
//!
//! Requests go through goose's [`GooseUser`] (so goose times and counts them) with a fresh
//! [`TraceParent`] each, and are named by route template, never by raw URL:
//! `GET /api/orders/{id}`, and in chaos with the phase or the controller appended
//! (`GET /api/products [service_d_slow]`), which is what per-phase thresholds select on.
//! A status other than the expected one (2xx, or the 422 of a fraud order) is a failed
//! request in goose's metrics, as `http_req_failed` is in k6; what the body holds is judged
//! by [`Checks`].

use crate::checks::{Checks, Group};
use crate::scenarios::chaos::Phase;
use crate::traceparent::TraceParent;
use goose::goose::{GooseMethod, GooseRequest, GooseUser, TransactionError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The demo catalogue; `sku-scale` exists but is out of stock.
pub const SKUS: [&str; 4] = ["sku-espresso", "sku-grinder", "sku-kettle", "sku-filter"];

/// A route the tool calls, by template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Route {
    /// `GET /api/products`.
    Products,
    /// `POST /api/orders`.
    CreateOrder,
    /// `GET /api/orders/{id}`.
    GetOrder,
    /// `/admin/faults` of a service (chaos only).
    Faults(FaultTarget, AdminCall),
}

/// The services chaos breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultTarget {
    /// service-b, the Kafka producer behind service-a's breaker.
    ServiceB,
    /// service-d, the catalogue.
    ServiceD,
}

impl FaultTarget {
    /// The service's name.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultTarget::ServiceB => "service-b",
            FaultTarget::ServiceD => "service-d",
        }
    }
}

/// The calls of `/admin/faults`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AdminCall {
    /// `GET`: the current settings.
    Show,
    /// `PUT`: set a fault.
    Set,
    /// `DELETE`: back to the environment's defaults.
    Reset,
}

impl Route {
    /// Every route, for looking requests up in goose's metrics.
    pub const ALL: [Route; 9] = [
        Route::Products,
        Route::CreateOrder,
        Route::GetOrder,
        Route::Faults(FaultTarget::ServiceB, AdminCall::Show),
        Route::Faults(FaultTarget::ServiceB, AdminCall::Set),
        Route::Faults(FaultTarget::ServiceB, AdminCall::Reset),
        Route::Faults(FaultTarget::ServiceD, AdminCall::Show),
        Route::Faults(FaultTarget::ServiceD, AdminCall::Set),
        Route::Faults(FaultTarget::ServiceD, AdminCall::Reset),
    ];

    /// The HTTP method.
    pub fn method(self) -> GooseMethod {
        match self {
            Route::Products | Route::GetOrder => GooseMethod::Get,
            Route::CreateOrder => GooseMethod::Post,
            Route::Faults(_, AdminCall::Show) => GooseMethod::Get,
            Route::Faults(_, AdminCall::Set) => GooseMethod::Put,
            Route::Faults(_, AdminCall::Reset) => GooseMethod::Delete,
        }
    }

    /// The path template, with the service for admin routes.
    pub fn template(self) -> String {
        match self {
            Route::Products => "/api/products".into(),
            Route::CreateOrder => "/api/orders".into(),
            Route::GetOrder => "/api/orders/{id}".into(),
            Route::Faults(target, _) => format!("/admin/faults ({})", target.as_str()),
        }
    }
}

impl fmt::Display for Route {
    /// `METHOD template`, as k6's `name` tag: `GET /api/orders/{id}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method(), self.template())
    }
}

/// What is appended to a request's name, so metrics can be split as k6 splits them by tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tag {
    /// Nothing: smoke and load.
    Untagged,
    /// A chaos shopper's request, by the phase it was sent in.
    Phase(Phase),
    /// A request of the chaos controller.
    Controller,
}

impl Tag {
    /// Every tag, for looking requests up in goose's metrics.
    pub fn all() -> impl Iterator<Item = Tag> {
        [Tag::Untagged, Tag::Controller]
            .into_iter()
            .chain(Phase::ALL.into_iter().map(Tag::Phase))
    }

    /// The group whose requests carry this tag.
    pub fn group(self) -> Group {
        match self {
            Tag::Controller => Group::Controller,
            Tag::Untagged | Tag::Phase(_) => Group::Shoppers,
        }
    }

    /// The phase, for a chaos shopper's request.
    pub fn phase(self) -> Option<Phase> {
        match self {
            Tag::Phase(phase) => Some(phase),
            _ => None,
        }
    }
}

/// The name of a request in goose's metrics: its route and tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestName {
    /// The route template.
    pub route: Route,
    /// The tag appended.
    pub tag: Tag,
}

impl RequestName {
    /// Every name a run can use.
    pub fn all() -> impl Iterator<Item = RequestName> {
        Route::ALL
            .into_iter()
            .flat_map(|route| Tag::all().map(move |tag| RequestName { route, tag }))
    }

    /// The name given to goose (it prefixes the method itself).
    pub fn goose_name(&self) -> String {
        match self.tag {
            Tag::Untagged => self.route.template(),
            Tag::Phase(phase) => format!("{} [{}]", self.route.template(), phase.as_str()),
            Tag::Controller => format!("{} [controller]", self.route.template()),
        }
    }
}

impl fmt::Display for RequestName {
    /// The key of goose's request metrics, and the name in the summary:
    /// `GET /api/products [baseline]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.route.method(), self.goose_name())
    }
}

/// A product as `GET /api/products` lists it (only what the shoppers read).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Product {
    /// Stock keeping unit.
    pub sku: String,
    /// Units in stock.
    #[serde(default)]
    pub stock: i64,
}

/// An order as service-a answers it (only what the checks read).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Order {
    /// The order id.
    pub id: String,
    /// `accepted`, then `fulfilled` once service-c consumed its event.
    pub status: String,
    /// The total.
    #[serde(default)]
    pub total_cents: i64,
    /// Set once fulfilled.
    #[serde(default)]
    pub fulfilled_at: Option<String>,
}

/// One line of a new order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// Which product.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status, or none when no response came (connection refused, timeout).
    pub status: Option<u16>,
    /// The `content-type` header.
    pub content_type: String,
    /// The body.
    pub body: String,
    /// Time to the response's headers, as goose measures it.
    pub duration_ms: f64,
    /// The `traceparent` the request carried.
    pub trace: TraceParent,
    /// Why there was no response.
    pub error: Option<String>,
}

impl Reply {
    /// Whether the status is `status`.
    pub fn is(&self, status: u16) -> bool {
        self.status == Some(status)
    }

    /// The body as JSON of type `T`, if it is.
    pub fn json<T: for<'de> Deserialize<'de>>(&self) -> Option<T> {
        serde_json::from_str(&self.body).ok()
    }

    /// A short description for a failed check's log line.
    pub fn describe(&self) -> String {
        match (self.status, &self.error) {
            (Some(status), _) => {
                let mut body: String = self.body.chars().take(200).collect();
                if body.len() < self.body.len() {
                    body.push_str("...");
                }
                format!("status {status}, {:.0} ms: {body}", self.duration_ms)
            }
            (None, Some(error)) => format!("no response: {error}"),
            (None, None) => "no response".into(),
        }
    }
}

/// A request to send.
pub(crate) struct Call<'a> {
    pub name: RequestName,
    /// A full URL.
    pub url: &'a str,
    /// A JSON body.
    pub body: Option<String>,
    /// The status that is not a failure, when it is not a 2xx.
    pub expect_status: Option<u16>,
    /// `Authorization: Bearer` token.
    pub bearer: Option<&'a str>,
}

/// Sends `call` through goose with a fresh `traceparent`, and reads the response.
pub(crate) async fn send(
    user: &mut GooseUser,
    call: Call<'_>,
) -> Result<Reply, Box<TransactionError>> {
    let trace = TraceParent::random();
    let method = call.name.route.method();
    let goose_name = call.name.goose_name();
    let mut builder = user
        .get_request_builder(&method, call.url)?
        .header(TraceParent::HEADER, trace.to_string())
        .header("accept", "application/json");
    if let Some(token) = call.bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = call.body {
        builder = builder
            .header("content-type", "application/json")
            .body(body);
    }
    let mut request = GooseRequest::builder()
        .method(method)
        .path(call.url)
        .name(goose_name.as_str())
        .set_request_builder(builder);
    if let Some(status) = call.expect_status {
        request = request.expect_status_code(status);
    }
    let goose = user.request(request.build()).await?;
    let duration_ms = goose.request.response_time_micros() as f64 / 1000.0;
    Ok(match goose.response {
        Ok(response) => {
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let (body, error) = match response.bytes().await {
                Ok(bytes) => (String::from_utf8_lossy(&bytes).into_owned(), None),
                Err(e) => (String::new(), Some(format!("reading the body: {e}"))),
            };
            Reply {
                status: Some(status),
                content_type,
                body,
                duration_ms,
                trace,
                error,
            }
        }
        Err(e) => Reply {
            status: None,
            content_type: String::new(),
            body: String::new(),
            duration_ms,
            trace,
            error: Some(error_chain(&e)),
        },
    })
}

/// An error with its causes: reqwest's own message leaves out why ("connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Where a shopper's requests take their tag from.
#[derive(Clone, Copy)]
pub enum TagSource<'a> {
    /// Always the same tag.
    Fixed(Tag),
    /// The chaos phase in force when each request is sent.
    Phase(&'a crate::scenarios::chaos::PhaseCell),
}

impl TagSource<'_> {
    fn now(&self) -> Tag {
        match self {
            TagSource::Fixed(tag) => *tag,
            TagSource::Phase(cell) => Tag::Phase(cell.get()),
        }
    }
}

/// A user of the shop: its goose user, where its checks go, how its requests are tagged.
pub struct Shopper<'a> {
    /// The goose user that sends the requests.
    pub user: &'a mut GooseUser,
    /// Where checks are counted.
    pub checks: &'a Checks,
    /// The group the checks belong to.
    pub group: Group,
    /// How requests are tagged.
    pub tags: TagSource<'a>,
    /// The gateway's base URL.
    pub base_url: &'a str,
}

impl Shopper<'_> {
    /// Records check `name` about `reply`.
    pub fn check(&self, name: &str, passed: bool, reply: &Reply) -> bool {
        self.checks
            .record(self.group, name, passed, Some(&reply.trace), || {
                reply.describe()
            })
    }

    async fn call(
        &mut self,
        route: Route,
        path: &str,
        body: Option<String>,
        expect_status: Option<u16>,
    ) -> Result<Reply, Box<TransactionError>> {
        let url = format!("{}{path}", self.base_url);
        let name = RequestName {
            route,
            tag: self.tags.now(),
        };
        send(
            self.user,
            Call {
                name,
                url: &url,
                body,
                expect_status,
                bearer: None,
            },
        )
        .await
    }

    /// `GET /api/products`, without checks.
    pub async fn get_products(&mut self) -> Result<Reply, Box<TransactionError>> {
        self.call(Route::Products, "/api/products", None, None)
            .await
    }

    /// `GET /api/products`; checks the status and that the list is not empty.
    pub async fn list_products(&mut self) -> Result<(Reply, Vec<Product>), Box<TransactionError>> {
        let reply = self.get_products().await?;
        let products: Option<Vec<Product>> = reply.json();
        self.check("products: status 200", reply.is(200), &reply);
        self.check(
            "products: a non-empty list",
            products.as_ref().is_some_and(|p| !p.is_empty()),
            &reply,
        );
        Ok((reply, products.unwrap_or_default()))
    }

    /// `POST /api/orders`. With `fraud`, a 422 is the expected status, not a failure.
    pub async fn create_order(
        &mut self,
        customer_id: &str,
        items: &[Item],
        fraud: bool,
    ) -> Result<(Reply, Option<Order>), Box<TransactionError>> {
        let body = serde_json::json!({ "customer_id": customer_id, "items": items }).to_string();
        let expect = fraud.then_some(422);
        let reply = self
            .call(Route::CreateOrder, "/api/orders", Some(body), expect)
            .await?;
        let order = reply.json();
        Ok((reply, order))
    }

    /// The checks of a created order; true when all held.
    pub fn check_created(&self, reply: &Reply, order: Option<&Order>) -> bool {
        let created = self.check("create order: status 201", reply.is(201), reply);
        let has_id = self.check(
            "create order: has an id",
            order.is_some_and(|o| !o.id.is_empty()),
            reply,
        );
        // The response reads the order back after the event went out, so on a fast path
        // service-c may already have fulfilled it.
        let status = self.check(
            "create order: accepted or fulfilled",
            order.is_some_and(|o| o.status == "accepted" || o.status == "fulfilled"),
            reply,
        );
        let total = self.check(
            "create order: total_cents > 0",
            order.is_some_and(|o| o.total_cents > 0),
            reply,
        );
        created && has_id && status && total
    }

    /// The checks of a rejected (fraud) order: 422 with a problem+json body.
    pub fn check_rejected(&self, reply: &Reply, problem_json: bool) -> bool {
        let status = self.check("fraud order: status 422", reply.is(422), reply);
        if !problem_json {
            return status;
        }
        let body = self.check(
            "fraud order: problem+json body",
            reply.content_type.starts_with("application/problem+json"),
            reply,
        );
        status && body
    }

    /// `GET /api/orders/{id}`.
    pub async fn get_order(
        &mut self,
        id: &str,
    ) -> Result<(Reply, Option<Order>), Box<TransactionError>> {
        let reply = self
            .call(Route::GetOrder, &format!("/api/orders/{id}"), None, None)
            .await?;
        let order = reply.json();
        Ok((reply, order))
    }
}

/// In-stock skus of a product list, or the known demo skus when it has none.
pub fn in_stock_skus(products: &[Product]) -> Vec<String> {
    let skus: Vec<String> = products
        .iter()
        .filter(|p| p.stock > 0)
        .map(|p| p.sku.clone())
        .collect();
    if skus.is_empty() {
        SKUS.iter().map(|s| s.to_string()).collect()
    } else {
        skus
    }
}

/// A random small basket: one or two lines of one or two units of in-stock products.
pub fn basket(skus: &[String]) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    for _ in 0..fastrand::usize(1..=2) {
        let Some(sku) = skus.get(fastrand::usize(..skus.len().max(1))) else {
            break;
        };
        let quantity = fastrand::u32(1..=2);
        match items.iter_mut().find(|i| &i.sku == sku) {
            Some(item) => item.quantity = quantity,
            None => items.push(Item {
                sku: sku.clone(),
                quantity,
            }),
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_by_route_template_and_tag() {
        let name = RequestName {
            route: Route::GetOrder,
            tag: Tag::Untagged,
        };
        assert_eq!(name.to_string(), "GET /api/orders/{id}");
        assert_eq!(name.goose_name(), "/api/orders/{id}");
        let phased = RequestName {
            route: Route::Products,
            tag: Tag::Phase(Phase::ServiceDSlow),
        };
        assert_eq!(phased.to_string(), "GET /api/products [service_d_slow]");
        let admin = RequestName {
            route: Route::Faults(FaultTarget::ServiceB, AdminCall::Set),
            tag: Tag::Controller,
        };
        assert_eq!(
            admin.to_string(),
            "PUT /admin/faults (service-b) [controller]"
        );
    }

    #[test]
    fn every_name_is_distinct() {
        let names: Vec<String> = RequestName::all().map(|n| n.to_string()).collect();
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(names.len(), unique.len());
        assert_eq!(names.len(), Route::ALL.len() * Tag::all().count());
    }

    #[test]
    fn baskets_hold_in_stock_skus_only() {
        let products = vec![
            Product {
                sku: "a".into(),
                stock: 3,
            },
            Product {
                sku: "scale".into(),
                stock: 0,
            },
        ];
        let skus = in_stock_skus(&products);
        assert_eq!(skus, vec!["a".to_string()]);
        for _ in 0..100 {
            let items = basket(&skus);
            assert!(!items.is_empty() && items.len() <= 2);
            assert!(
                items
                    .iter()
                    .all(|i| i.sku == "a" && (1..=2).contains(&i.quantity))
            );
        }
        assert_eq!(in_stock_skus(&[]).len(), SKUS.len());
    }
}
