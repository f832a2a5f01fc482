//! A DNS resolver that only returns addresses the delivery policy permits. Connecting to the
//! very addresses that were checked (no second lookup) is what defeats DNS rebinding.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use herald_core::network::AddressPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The error of a host that resolves only to refused addresses.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to addresses deliveries may not reach (private, loopback, link-local…)")]
pub struct BlockedAddress(pub String);

/// Resolves with the configured answers or the system resolver, then drops refused
/// addresses.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: Arc<AddressPolicy>,
    /// `delivery.resolve`: names answered without DNS.
    pub fixed: Arc<BTreeMap<String, Vec<IpAddr>>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let fixed = self.fixed.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = match fixed.get(&host.to_ascii_lowercase()) {
                Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(
                    Box::new(BlockedAddress(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}
