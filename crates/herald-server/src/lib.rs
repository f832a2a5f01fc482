//! A Herald process: its configuration (`config`) and its assembly (`server`: the store,
//! the API of `herald-api` and the delivery engine of `herald-delivery`, started and
//! stopped together). The `herald` binary is a thin shell over [`server::start`].

pub mod config;
mod membership;
pub mod server;

pub use config::Config;
pub use herald_api::{auth, error, http, lookups, schema, state};
pub use herald_delivery::{destinations, dispatch, operational, retention};
pub use server::{start, Server};
