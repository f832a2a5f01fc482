//! Herald's HTTP API: the Svix-compatible `/api/v1` routers (one per resource, in
//! `http::v1`), bearer-token authentication (`auth`), the one error type (`error`), the
//! state handlers share (`state`) and its settings (`settings`).
//!
//! It reaches the store through `herald_core::Store` and the engine only for what the
//! engine owns (URL and template checks, operational events); it does not start anything.

pub mod auth;
pub mod error;
pub mod http;
pub mod lookups;
pub mod schema;
pub mod settings;
pub mod state;
pub mod ui;
