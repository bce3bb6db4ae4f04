//! The product catalog: a fixed demo assortment with prices and stock.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One product.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Product {
    /// Stock keeping unit, the product's id.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Price of one unit in cents.
    pub unit_price_cents: u64,
    /// Units in stock.
    pub stock: u32,
}

/// A request to price and check a list of items.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockCheck {
    /// The items to check.
    pub items: Vec<StockItem>,
}

/// One item of a [`StockCheck`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockItem {
    /// Which product.
    pub sku: String,
    /// How many units.
    pub quantity: u32,
}

/// The answer to a [`StockCheck`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StockReport {
    /// Per item, in request order.
    pub lines: Vec<StockLine>,
    /// True when every line is in stock.
    pub all_in_stock: bool,
    /// Sum of quantity x unit price.
    pub total_cents: u64,
}

/// One priced line of a [`StockReport`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StockLine {
    /// Which product.
    pub sku: String,
    /// Units asked for.
    pub quantity: u32,
    /// Price of one unit in cents.
    pub unit_price_cents: u64,
    /// Whether that many units are in stock.
    pub in_stock: bool,
}

/// A stock check named a product that does not exist.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown sku {sku}")]
pub struct UnknownSku {
    /// The sku asked for.
    pub sku: String,
    /// Its position in the request.
    pub index: usize,
}

/// The catalog and the simulated cost of looking it up.
#[derive(Debug)]
pub struct Catalog {
    products: Vec<Product>,
    work_latency: Duration,
}

impl Catalog {
    /// The demo assortment.
    pub fn demo(work_latency: Duration) -> Self {
        let product = |sku: &str, name: &str, unit_price_cents, stock| Product {
            sku: sku.into(),
            name: name.into(),
            unit_price_cents,
            stock,
        };
        Self {
            products: vec![
                product("sku-espresso", "Espresso beans 1 kg", 2_450, 500),
                product("sku-grinder", "Burr grinder", 12_900, 40),
                product("sku-kettle", "Gooseneck kettle", 5_990, 75),
                product("sku-filter", "Paper filters (100)", 690, 2_000),
                product("sku-scale", "Brew scale", 3_450, 0),
            ],
            work_latency,
        }
    }

    /// Every product.
    #[tracing::instrument(name = "catalog.list", skip(self))]
    pub async fn list(&self) -> Vec<Product> {
        self.simulate_work().await;
        self.products.clone()
    }

    /// One product by sku.
    #[tracing::instrument(name = "catalog.find", skip(self))]
    pub async fn find(&self, sku: &str) -> Option<Product> {
        self.simulate_work().await;
        self.products.iter().find(|p| p.sku == sku).cloned()
    }

    /// Prices the items and checks stock; an unknown sku is an error naming its index.
    #[tracing::instrument(name = "catalog.check", skip_all, fields(demo.catalog.items = request.items.len()))]
    pub async fn check(&self, request: &StockCheck) -> Result<StockReport, UnknownSku> {
        self.simulate_work().await;
        let mut lines = Vec::with_capacity(request.items.len());
        for (index, item) in request.items.iter().enumerate() {
            let product = self
                .products
                .iter()
                .find(|p| p.sku == item.sku)
                .ok_or_else(|| UnknownSku {
                    sku: item.sku.clone(),
                    index,
                })?;
            lines.push(StockLine {
                sku: item.sku.clone(),
                quantity: item.quantity,
                unit_price_cents: product.unit_price_cents,
                in_stock: product.stock >= item.quantity,
            });
        }
        Ok(StockReport {
            all_in_stock: lines.iter().all(|l| l.in_stock),
            total_cents: lines
                .iter()
                .map(|l| l.unit_price_cents * u64::from(l.quantity))
                .sum(),
            lines,
        })
    }

    async fn simulate_work(&self) {
        if !self.work_latency.is_zero() {
            tokio::time::sleep(self.work_latency).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(items: &[(&str, u32)]) -> StockCheck {
        StockCheck {
            items: items
                .iter()
                .map(|(sku, quantity)| StockItem {
                    sku: sku.to_string(),
                    quantity: *quantity,
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn prices_items_and_flags_missing_stock() {
        let catalog = Catalog::demo(Duration::ZERO);
        let report = catalog
            .check(&check(&[("sku-espresso", 2), ("sku-scale", 1)]))
            .await
            .unwrap();
        assert_eq!(report.total_cents, 2 * 2_450 + 3_450);
        assert!(report.lines[0].in_stock);
        assert!(!report.lines[1].in_stock, "the scale is out of stock");
        assert!(!report.all_in_stock);
    }

    #[tokio::test]
    async fn an_unknown_sku_names_its_position() {
        let catalog = Catalog::demo(Duration::ZERO);
        let error = catalog
            .check(&check(&[("sku-espresso", 1), ("nope", 1)]))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            UnknownSku {
                sku: "nope".into(),
                index: 1
            }
        );
    }
}
