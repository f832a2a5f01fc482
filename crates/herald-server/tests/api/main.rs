//! End-to-end tests: a real Herald on port 0 with a temporary SQLite database, real
//! receivers on port 0, driven over HTTP (raw requests and the official Svix SDK).

mod contract;
mod helpers;
mod ingest;
mod services;
mod stats;
mod sync_calls;

mod broadcast;
mod brokers;
mod bulk_cancel;
mod bulk_replay;
mod callbacks;
mod delivery;
mod email;
mod errors;
mod events;

mod mtls;
mod oauth;
mod openapi;
mod operational;
mod ordered;
mod payload_filters;
mod poller;
mod portal_sessions;
mod probes;
mod purge_content;
mod schedule;
mod sdk;
mod search;
mod signature_schemes;
mod templates;
mod tokens;
mod verification;
