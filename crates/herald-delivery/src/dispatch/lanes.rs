//! Per-endpoint lanes: each endpoint has its own concurrency limit and a bounded number of
//! claimed deliveries waiting, so a slow or dead endpoint fills only its own lane.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use herald_core::model::Endpoint;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Past this many remembered endpoints, pacing entries already in the past are dropped.
const PACING_MEMORY: usize = 10_000;

/// The lanes of all endpoints with work in flight.
#[derive(Debug, Clone)]
pub struct Lanes {
    inner: Arc<Mutex<HashMap<String, Lane>>>,
    /// Signalled when a full lane gets room: its endpoint's rows may be claimed again.
    room: Arc<Notify>,
    /// When each rate-limited endpoint may next be sent to. Kept apart from the lanes,
    /// which come and go with their work, so that the pace survives a lane emptying.
    pacing: Arc<Mutex<HashMap<String, DateTime<Utc>>>>,
    /// Attempts at once for an endpoint without its own cap.
    concurrency: usize,
    /// How long a claimed delivery may wait before another node may take it over.
    lease: std::time::Duration,
}

#[derive(Debug)]
struct Lane {
    slots: Arc<Semaphore>,
    /// Deliveries assigned to the lane: running plus waiting.
    assigned: usize,
    /// Past this many assigned, the claimer skips the endpoint; the lane takes at most
    /// twice this, which its attempts can work through within a lease.
    depth: usize,
}

/// A delivery's place in its endpoint's lane; leaving is automatic on drop.
#[derive(Debug)]
pub struct LaneTicket {
    lanes: Lanes,
    endpoint_id: String,
    slots: Arc<Semaphore>,
}

impl Lanes {
    /// Lanes running up to `concurrency` attempts each, unless an endpoint has its own cap,
    /// and holding twice their concurrency before their endpoint is skipped (less for a
    /// rate-limited endpoint, see [`Lanes::enter`]); claims are leased for `lease`.
    pub fn new(concurrency: usize, lease: std::time::Duration) -> Self {
        Self {
            inner: Arc::default(),
            room: Arc::default(),
            pacing: Arc::default(),
            concurrency: concurrency.max(1),
            lease,
        }
    }

    /// Endpoints whose lanes hold all they may: the claimer leaves their rows in the queue.
    pub fn full(&self) -> Vec<String> {
        let lanes = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        lanes
            .iter()
            .filter(|(_, lane)| lane.assigned >= lane.depth)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Resolves once a lane that was full has room again (or at once, if one got room since
    /// the last call).
    pub async fn freed(&self) {
        self.room.notified().await;
    }

    /// Assigns a delivery to the endpoint's lane; `None` if the lane holds all it can.
    /// A lane is made with the endpoint's concurrency cap and rate limit of the moment, and
    /// keeps them until it empties.
    ///
    /// A rate-limited endpoint's lane is worked through no faster than its rate, and its
    /// pace may be shared by several nodes: so its depth is a thirty-second of a lease's
    /// worth of attempts at that rate (a lane holds up to twice its depth). Eight nodes'
    /// full lanes then wait half a lease for their turns, plus an attempt's timeout (a
    /// sixth of a lease at most), and no node takes over a delivery another one is still
    /// waiting to make.
    pub fn enter(&self, endpoint: &Endpoint) -> Option<LaneTicket> {
        self.assign(endpoint, 2)
    }

    /// Like [`enter`](Self::enter), but only while the lane is not full: what the claimer
    /// would skip is not taken by another way either.
    pub fn enter_unless_full(&self, endpoint: &Endpoint) -> Option<LaneTicket> {
        self.assign(endpoint, 1)
    }

    /// Assigns a delivery to the endpoint's lane unless it holds `depths` times its depth.
    fn assign(&self, endpoint: &Endpoint, depths: usize) -> Option<LaneTicket> {
        let concurrency = endpoint
            .max_concurrency
            .map_or(self.concurrency, |c| (c as usize).max(1));
        let mut depth = concurrency * 2;
        if let Some(rate) = endpoint.rate_limit.filter(|r| *r > 0) {
            let workable = u64::from(rate) * self.lease.as_secs() / 32;
            depth = depth.min(usize::try_from(workable).unwrap_or(usize::MAX).max(1));
        }
        let mut lanes = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let lane = lanes.entry(endpoint.id.clone()).or_insert_with(|| Lane {
            slots: Arc::new(Semaphore::new(concurrency)),
            assigned: 0,
            depth,
        });
        if lane.assigned >= lane.depth * depths {
            return None;
        }
        lane.assigned += 1;
        Some(LaneTicket {
            lanes: self.clone(),
            endpoint_id: endpoint.id.clone(),
            slots: lane.slots.clone(),
        })
    }
}

impl LaneTicket {
    /// Keeps every attempt to this endpoint (on this node) from starting before `until`: the
    /// endpoint asked for a pause (`429`/`503` with `Retry-After`).
    pub fn hold_off(&self, until: DateTime<Utc>) {
        let mut pacing = self.lanes.pacing.lock().unwrap_or_else(|e| e.into_inner());
        let next = pacing.entry(self.endpoint_id.clone()).or_insert(until);
        *next = (*next).max(until);
    }

    /// When this attempt may start, given pauses the endpoint asked for.
    pub fn paused_until(&self) -> Option<DateTime<Utc>> {
        let pacing = self.lanes.pacing.lock().unwrap_or_else(|e| e.into_inner());
        pacing.get(&self.endpoint_id).copied()
    }

    /// When this attempt may start so that the endpoint gets at most `per_second` attempts
    /// a second: the earliest free moment of its pace, which this attempt then takes.
    pub fn pace(&self, per_second: u32, now: DateTime<Utc>) -> DateTime<Utc> {
        let spacing = spacing(per_second);
        let mut pacing = self.lanes.pacing.lock().unwrap_or_else(|e| e.into_inner());
        if pacing.len() > PACING_MEMORY {
            pacing.retain(|_, next| *next > now);
        }
        let start = pacing
            .get(&self.endpoint_id)
            .map_or(now, |next| (*next).max(now));
        pacing.insert(self.endpoint_id.clone(), start + spacing);
        start
    }

    /// Waits for one of the lane's concurrency slots.
    pub async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("lane semaphores are never closed")
    }
}

/// The time between two attempts to an endpoint limited to `per_second`.
pub fn spacing(per_second: u32) -> chrono::Duration {
    chrono::Duration::microseconds(1_000_000 / i64::from(per_second.max(1)))
}

impl Drop for LaneTicket {
    fn drop(&mut self) {
        let mut lanes = self.lanes.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lane) = lanes.get_mut(&self.endpoint_id) {
            if lane.assigned == lane.depth {
                // It was full, so the claimer is leaving its endpoint out: no longer.
                self.lanes.room.notify_one();
            }
            lane.assigned -= 1;
            if lane.assigned == 0 {
                lanes.remove(&self.endpoint_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: std::time::Duration = std::time::Duration::from_secs(180);

    fn endpoint(id: &str, max_concurrency: Option<u32>) -> Endpoint {
        let mut e = herald_core::conformance::endpoint("app_1", None);
        e.id = id.to_owned();
        e.max_concurrency = max_concurrency;
        e
    }

    #[test]
    fn a_lane_is_full_at_its_depth_and_frees_on_drop() {
        let lanes = Lanes::new(1, LEASE);
        let (ep_a, ep_b) = (endpoint("ep_a", None), endpoint("ep_b", None));
        let a = lanes.enter(&ep_a).unwrap();
        assert!(lanes.full().is_empty());
        let b = lanes.enter(&ep_a).unwrap();
        let _other = lanes.enter(&ep_b).unwrap();
        assert_eq!(lanes.full(), ["ep_a"]);
        drop(a);
        assert!(lanes.full().is_empty());
        drop(b);
        assert!(lanes.inner.lock().unwrap().get("ep_a").is_none());
    }

    #[test]
    fn an_endpoint_cap_sizes_its_lane_and_bounds_what_it_takes() {
        let lanes = Lanes::new(8, LEASE);
        let capped = endpoint("ep_capped", Some(1));
        let tickets: Vec<_> = (0..4).map(|_| lanes.enter(&capped).unwrap()).collect();
        assert_eq!(lanes.full(), ["ep_capped"], "full at twice its cap");
        assert!(
            lanes.enter(&capped).is_none(),
            "never more than a lease's worth"
        );
        assert_eq!(tickets[0].slots.available_permits(), 1);
        let wide = endpoint("ep_wide", Some(20));
        assert_eq!(lanes.enter(&wide).unwrap().slots.available_permits(), 20);
    }

    #[test]
    fn a_rate_limited_lane_holds_what_its_rate_works_through_well_within_a_lease() {
        let lanes = Lanes::new(32, LEASE);
        let mut slow = endpoint("ep_slow", None);
        slow.rate_limit = Some(1);
        // 1 a second, a 180 s lease: 5 before the claimer skips it.
        let tickets: Vec<_> = (0..5).map(|_| lanes.enter(&slow).unwrap()).collect();
        assert_eq!(lanes.full(), ["ep_slow"]);
        drop(tickets);
        let mut fast = endpoint("ep_fast", None);
        fast.rate_limit = Some(1000);
        let tickets: Vec<_> = (0..63).map(|_| lanes.enter(&fast).unwrap()).collect();
        assert!(lanes.full().is_empty(), "a high rate keeps the usual depth");
        drop(tickets);
    }

    #[test]
    fn a_rate_limited_endpoint_is_paced_even_across_idle_lanes() {
        let lanes = Lanes::new(4, LEASE);
        let now = Utc::now();
        let (ep, other) = (endpoint("ep", None), endpoint("other", None));
        let first = lanes.enter(&ep).unwrap().pace(2, now);
        let second = lanes.enter(&ep).unwrap().pace(2, now);
        assert_eq!(first, now);
        assert_eq!(second, now + chrono::Duration::milliseconds(500));
        // Both tickets were dropped (the lane emptied), yet the pace holds.
        assert_eq!(
            lanes.enter(&ep).unwrap().pace(2, now),
            now + chrono::Duration::seconds(1)
        );
        assert_eq!(
            lanes.enter(&other).unwrap().pace(2, now),
            now,
            "endpoints are paced apart"
        );
    }

    #[tokio::test]
    async fn a_full_lane_signals_once_it_has_room() {
        let lanes = Lanes::new(1, LEASE);
        let ep = endpoint("ep", None);
        let mut tickets: Vec<_> = (0..3).map(|_| lanes.enter(&ep).unwrap()).collect();
        let signalled = || tokio::time::timeout(std::time::Duration::ZERO, lanes.freed());
        tickets.pop();
        assert_eq!(lanes.full(), ["ep"], "still at its depth");
        assert!(signalled().await.is_err(), "no room yet, no signal");
        tickets.pop();
        assert!(lanes.full().is_empty());
        assert!(signalled().await.is_ok(), "room again: the claimer is told");
    }

    #[tokio::test]
    async fn a_lane_runs_at_most_its_concurrency() {
        let lanes = Lanes::new(1, LEASE);
        let ep = endpoint("ep", None);
        let (a, b) = (lanes.enter(&ep).unwrap(), lanes.enter(&ep).unwrap());
        let held = a.slot().await;
        assert!(b.slots.clone().try_acquire_owned().is_err());
        drop(held);
        assert!(b.slots.clone().try_acquire_owned().is_ok());
    }
}
