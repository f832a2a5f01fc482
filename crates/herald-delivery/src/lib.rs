//! Herald's delivery engine: the dispatcher that claims due deliveries and runs each
//! endpoint in its own lane (`dispatch`), the destinations it delivers to (`destinations`:
//! signed HTTP, chat, email, brokers, with templates), the operational webhooks it sends
//! the provider (`operational`), the cleaner that enforces retention (`retention`), and
//! synchronous calls whose answer the caller waits for (`sync_call`), the loop that
//! verifies endpoints' subscriptions (`verification`), and the runner of background tasks
//! such as broadcasts (`tasks`).
//!
//! It knows the store only through `herald_core::Store`, and nothing of HTTP APIs or of
//! how the process is assembled; its configuration is its own (`settings`).

pub mod destinations;
pub mod dispatch;
pub mod operational;
pub mod retention;
pub mod settings;
pub mod sync_call;
pub mod tasks;
pub mod trace_context;
mod unqueued;
pub mod verification;
