//! Herald's domain, free of I/O frameworks: what an application, endpoint, message and
//! attempt are, the rules that govern them (validation, filters, retries, signatures), and
//! the traits the server is built on (`Store`, `Destination`, `Clock`).

pub mod clock;
pub mod destination;
pub mod endpoint_auth;
pub mod filter;
pub mod ids;
pub mod listen;
pub mod metrics;
pub mod model;
pub mod network;
pub mod payload_filter;
pub mod retry;
pub mod sealing;
pub mod search;
pub mod secret;
pub mod signature_scheme;
pub mod signing;
pub mod stats;
pub mod store;
pub mod task;
pub mod validation;

#[cfg(feature = "testing")]
pub mod conformance;

pub use clock::{Clock, ManualClock, SystemClock};
pub use store::{Store, StoreError};
