//! Herald's server: the Svix-compatible HTTP API, the dispatcher that delivers messages,
//! and the destinations it delivers to. The `herald` binary is a thin shell over
//! [`server::start`].

pub mod auth;
pub mod config;
pub mod destinations;
pub mod dispatch;
pub mod error;
pub mod http;
pub mod lookups;
pub mod operational;
pub mod retention;
pub mod schema;
pub mod server;
pub mod state;

pub use config::Config;
pub use server::{start, Server};
