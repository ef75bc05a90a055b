//! Black-box tests of the platform kernel: the real application over HTTP, on real
//! PostgreSQL, Redis and a Kafka-protocol broker (`scripts/test.sh` starts them).

// Tests may panic on the unexpected: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod probe;
#[cfg(feature = "baas-database")]
mod round_trips;
mod statements;

#[cfg(feature = "auth")]
mod auth;
#[cfg(feature = "cart")]
mod cart;
#[cfg(feature = "catalog")]
mod catalog;
mod cli;
mod container;
#[cfg(feature = "baas-database")]
mod databases;
mod edge;
mod errors;
mod events;
#[cfg(all(feature = "baas-database", feature = "storage"))]
mod fuzz;
#[cfg(feature = "kafka")]
mod kafka;
mod migrations;
#[cfg(feature = "notifications")]
mod notifications;
#[cfg(feature = "orders")]
mod orders;
mod pool;
#[cfg(feature = "storage")]
mod storage;
mod system;
#[cfg(all(feature = "notifications", feature = "auth"))]
mod webhooks;
