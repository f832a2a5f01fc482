//! Fresh deliveries taken straight from this node's publishes (see [`FreshIntake`]). A
//! publish reserves room here before its commit (a place among the attempts in flight and
//! one in the endpoint's lane, as a claim would take), writes the delivery leased to this
//! node, and hands it over after the commit; the loop then starts it as it starts a
//! claimed one. At moderate load this spares each delivery the claim's transaction and
//! the wake-ups around it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use herald_core::model::Endpoint;
use herald_core::store::{ClaimedDelivery, FreshIntake, IntakeRoom, IntakeStopped};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::lanes::{LaneTicket, Lanes};
use super::Context;

/// A delivery handed over by a publish, with the room kept for it.
pub(crate) struct Handed {
    pub claimed: ClaimedDelivery,
    pub lease_until: DateTime<Utc>,
    pub in_flight: OwnedSemaphorePermit,
    pub ticket: LaneTicket,
}

/// The dispatcher's side of [`FreshIntake`].
pub(crate) struct Intake {
    /// Weak: the store holds the intake, and the context holds the store.
    ctx: Weak<Context>,
    in_flight: Arc<Semaphore>,
    lanes: Lanes,
    /// Set by the loop while no due work waits for it (see `Dispatcher`).
    caught_up: Arc<AtomicBool>,
    lease: chrono::Duration,
    handed: mpsc::UnboundedSender<Handed>,
}

impl Intake {
    /// An intake sharing the loop's room (its places in flight, its lanes, whether it is
    /// caught up), sending what it is handed to `handed` (unbounded, but each item holds a
    /// place in flight, so no more than `max_in_flight` wait).
    pub fn new(
        ctx: &Arc<Context>,
        (in_flight, lanes, caught_up): (Arc<Semaphore>, Lanes, Arc<AtomicBool>),
        lease: chrono::Duration,
        handed: mpsc::UnboundedSender<Handed>,
    ) -> Self {
        Self {
            ctx: Arc::downgrade(ctx),
            in_flight,
            lanes,
            caught_up,
            lease,
            handed,
        }
    }
}

impl FreshIntake for Intake {
    fn lease_until(&self) -> DateTime<Utc> {
        match self.ctx.upgrade() {
            Some(ctx) => ctx.clock.now() + self.lease,
            None => Utc::now(),
        }
    }

    fn reserve(
        &self,
        endpoint: &Endpoint,
        lease_until: DateTime<Utc>,
    ) -> Option<Box<dyn IntakeRoom>> {
        if self.handed.is_closed() || !self.caught_up.load(Ordering::Relaxed) {
            return None;
        }
        let ctx = self.ctx.upgrade()?;
        // What the claimer leaves alone stays in the queue: an open (or probing) circuit,
        // a listen session held by another node.
        if ctx.breakers.is_tripped(&endpoint.id) || ctx.is_left_to_others(&endpoint.id) {
            return None;
        }
        let in_flight = self.in_flight.clone().try_acquire_owned().ok()?;
        let ticket = self.lanes.enter_unless_full(endpoint)?;
        Some(Box::new(Room {
            in_flight,
            ticket,
            lease_until,
            handed: self.handed.clone(),
        }))
    }
}

/// Room kept for one fresh delivery; dropping it frees both places.
struct Room {
    in_flight: OwnedSemaphorePermit,
    ticket: LaneTicket,
    lease_until: DateTime<Utc>,
    handed: mpsc::UnboundedSender<Handed>,
}

impl IntakeRoom for Room {
    fn start(self: Box<Self>, claimed: ClaimedDelivery) -> Result<(), IntakeStopped> {
        let Room {
            in_flight,
            ticket,
            lease_until,
            handed,
        } = *self;
        let item = Handed {
            claimed,
            lease_until,
            in_flight,
            ticket,
        };
        handed.send(item).map_err(|_| IntakeStopped)
    }
}
