//! A task-based agent: one run per order, in plain synchronous code (no async runtime).
//! Each run logs what it observed (`environment`) and the tools it used (`tool`).
//! Watch it live: run `fabraix-dev`, then here `export $(fabraix-dev --print-env)`, run this, open http://127.0.0.1:8417/.
//!
//! ```text
//! cargo run --example orders
//! ```

mod common;

use fabraix::{Event, EventType};
use serde::Serialize;

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct Order {
    id: u32,
    sku: String,
    quantity: u32,
}

#[derive(Serialize, schemars::JsonSchema)]
struct StockLookup {
    sku: String,
    in_stock: u32,
}

/// A stand-in for the warehouse system.
fn stock_of(sku: &str) -> u32 {
    sku.len() as u32 * 3
}

/// One order is one run. A sync fn: the registration blocks on entry, with no runtime.
#[fabraix::agent(
    id = "order-processor",
    system_prompt = format!("You process orders for warehouse {warehouse}. Never oversell stock.")
)]
fn process(order: &Order, warehouse: &str) -> Result<bool, fabraix::Error> {
    fabraix::log_event(Event::typed(EventType::Environment, order)?)?;
    let lookup = StockLookup {
        sku: order.sku.clone(),
        in_stock: stock_of(&order.sku),
    };
    fabraix::log_event(Event::typed(EventType::Tool, &lookup)?)?;
    let accepted = lookup.in_stock >= order.quantity;
    let trace = fabraix::current_trace().ok_or(fabraix::Error::NoTrace)?;
    println!(
        "order {} ({} x {}) in run {trace}: {}",
        order.id,
        order.quantity,
        order.sku,
        if accepted {
            "accepted"
        } else {
            "rejected, not enough stock"
        }
    );
    Ok(accepted)
}

fn main() -> Result<(), fabraix::Error> {
    let setup = common::mock_unless_configured()?;
    let orders = [
        Order {
            id: 1,
            sku: "kettle".into(),
            quantity: 2,
        },
        Order {
            id: 2,
            sku: "mug".into(),
            quantity: 12,
        },
        Order {
            id: 3,
            sku: "teapot".into(),
            quantity: 1,
        },
    ];
    for order in &orders {
        process(order, "north-1")?;
    }
    common::summary(&setup.server);
    Ok(())
}
