//! Destination kinds. Each implements [`herald_core::destination::Destination`].

pub mod http;
mod resolver;
