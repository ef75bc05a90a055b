//! Basalt: a Backend-as-a-Service and a marketplace backend in one binary.
//!
//! `Application::build(settings)` is how both `main` and the tests start the server: it
//! connects to PostgreSQL, migrates the enabled domains, starts the event relay and the
//! background jobs, and binds the HTTP listener (port 0 picks a free one).

mod app;
pub mod config;
pub mod domains;
pub mod events;
pub mod platform;
pub mod telemetry;

pub use app::{Application, Builder, enabled_domains, migration_targets as app_migration_targets};
