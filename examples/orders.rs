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
fn process(order: &Order, warehouse: &str) -> bool {
    // Telemetry never fails the order: an event that cannot be built or queued is let go
    // (a full queue's drop is counted in `fabraix::stats()` and reported through `tracing`).
    let _ = Event::typed(EventType::Environment, order).and_then(fabraix::log_event);
    let lookup = StockLookup {
        sku: order.sku.clone(),
        in_stock: stock_of(&order.sku),
    };
    let _ = Event::typed(EventType::Tool, &lookup).and_then(fabraix::log_event);
    let accepted = lookup.in_stock >= order.quantity;
    println!(
        "order {} ({} x {}) in run {}: {}",
        order.id,
        order.quantity,
        order.sku,
        common::run_name(),
        if accepted {
            "accepted"
        } else {
            "rejected, not enough stock"
        }
    );
    accepted
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
        process(order, "north-1");
    }
    common::summary(&setup.server);
    Ok(())
}
