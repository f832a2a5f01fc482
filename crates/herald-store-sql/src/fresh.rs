//! The rows a batch of publishes inserts into `deliveries`, and which of them go straight
//! to this node's dispatcher (see [`FreshIntake`]): those are written already leased to
//! it and started once the batch commits, so they skip the claim, its transaction and its
//! wake-up. The rest are written pending, for whichever node claims them.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_core::ids::IdKind;
use herald_core::model::{Delivery, DeliveryStatus, Endpoint};
use herald_core::store::{ClaimedDelivery, FreshIntake, IntakeRoom, NewMessage, StoreResult};
use rand::distributions::{Alphanumeric, DistString};

use crate::db::{execute_in, Db};
use crate::dialect::Dialect;
use crate::internal;
use crate::publish_plan::{Accepted, Known};
use crate::sql::{v, Sql};

/// One delivery row a publish inserts.
#[derive(Debug)]
pub struct NewDelivery<'a> {
    pub id: String,
    pub new: &'a NewMessage,
    pub endpoint_id: &'a str,
    /// The lease that hands it to this node's dispatcher, or `None`: pending.
    pub lease: Option<(&'a str, DateTime<Utc>)>,
}

impl NewDelivery<'_> {
    /// `Sending` when leased, else `Pending`.
    pub fn status(&self) -> i16 {
        match self.lease {
            Some(_) => DeliveryStatus::Sending as i16,
            None => DeliveryStatus::Pending as i16,
        }
    }

    /// Its `next_attempt_at`: a sending row's is its lease's end (as a claim writes it),
    /// a pending row's when it is first due.
    pub fn next_attempt_at(&self) -> DateTime<Utc> {
        match self.lease {
            Some((_, until)) => until,
            None => self.new.first_due(),
        }
    }

    pub fn lease_token(&self) -> Option<&str> {
        self.lease.map(|(token, _)| token)
    }

    pub fn trigger(&self) -> i16 {
        self.new.trigger_for(self.endpoint_id) as i16
    }
}

/// A new lease token, as a claim makes one.
pub fn lease_token() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 20)
}

/// A batch's delivery rows, and the room the dispatcher keeps for those it takes.
pub struct Fresh<'a> {
    pub rows: Vec<NewDelivery<'a>>,
    /// Index into `rows`, the endpoint, the room.
    taken: Vec<(usize, Arc<Endpoint>, Box<dyn IntakeRoom>)>,
}

impl<'a> Fresh<'a> {
    /// One row per accepted publish and endpoint it goes to. With an `intake`, the rows it
    /// has room for are leased to it under `token`: a delivery due at once (no `deliverAt`)
    /// to an endpoint that takes its messages in any order and needs no verifying. Those
    /// wait for an ordered line or a verification in the queue, as before.
    pub fn plan(
        accepted: &[Accepted<'a>],
        known: &'a Known,
        intake: Option<&dyn FreshIntake>,
        token: &'a str,
    ) -> Self {
        let by_id: HashMap<&str, &Endpoint> = known
            .endpoints
            .values()
            .flatten()
            .map(|e| (e.id.as_str(), e))
            .collect();
        let until = intake.map(|i| i.lease_until());
        let mut shared: HashMap<&str, Arc<Endpoint>> = HashMap::new();
        let mut rows = Vec::new();
        let mut taken = Vec::new();
        for a in accepted {
            for &endpoint_id in &a.endpoint_ids {
                let mut lease = None;
                let endpoint = by_id.get(endpoint_id).copied();
                let takeable = a.new.deliver_at.is_none()
                    && endpoint.is_some_and(|e| !e.ordered && !e.verification.status.holds());
                if let (Some(intake), Some(until), Some(endpoint), true) =
                    (intake, until, endpoint, takeable)
                {
                    if let Some(room) = intake.reserve(endpoint, until) {
                        let endpoint = shared
                            .entry(endpoint_id)
                            .or_insert_with(|| Arc::new(endpoint.clone()));
                        taken.push((rows.len(), endpoint.clone(), room));
                        lease = Some((token, until));
                    }
                }
                rows.push(NewDelivery {
                    id: IdKind::Delivery.new_id(),
                    new: a.new,
                    endpoint_id,
                    lease,
                });
            }
        }
        Self { rows, taken }
    }

    /// Whether any row was left pending, for whichever node claims it.
    pub fn left_to_claim(&self) -> bool {
        self.rows.len() > self.taken.len()
    }

    /// After the commit: starts each leased delivery in the dispatcher that kept room for
    /// it. One the dispatcher no longer takes (it stopped meanwhile) is made due at once
    /// for a claim; should that fail too, its lease runs out and it is claimed then.
    pub async fn hand_over<D: Dialect>(self, db: &Db<D>) {
        let mut refused = Vec::new();
        for (i, endpoint, room) in self.taken {
            let row = &self.rows[i];
            let Some((token, _)) = row.lease else {
                continue;
            };
            let m = &row.new.message;
            let claimed = ClaimedDelivery {
                delivery: Delivery {
                    id: row.id.clone(),
                    msg_id: m.id.clone(),
                    endpoint_id: row.endpoint_id.to_owned(),
                    app_id: m.app_id.clone(),
                    status: DeliveryStatus::Sending,
                    attempt_count: 0,
                    next_attempt_at: None,
                    trigger: row.new.trigger_for(row.endpoint_id),
                    updated_at: m.created_at,
                },
                lease_token: token.to_owned(),
                message: m.clone(),
                endpoint,
            };
            if room.start(claimed).is_err() {
                refused.push((row.id.clone(), token.to_owned()));
            }
        }
        if let Err(e) = release(db, refused).await {
            tracing::warn!(error = %e, "giving back deliveries the dispatcher no longer took failed; their leases will run out");
        }
    }
}

/// Makes the given leased deliveries pending and due at once (a fresh row's `updated_at`
/// is its message's time), and says so to every node.
async fn release<D: Dialect>(db: &Db<D>, refused: Vec<(String, String)>) -> StoreResult<()> {
    let Some((_, token)) = refused.first() else {
        return Ok(());
    };
    let mut sql = Sql::new(
        "UPDATE deliveries SET status = ?, next_attempt_at = updated_at, lease_token = NULL \
         WHERE lease_token = ? AND ",
    )
    .bind(v::code(DeliveryStatus::Pending as i16))
    .bind(v::text(token));
    // One batch, one token.
    D::push_in_list(
        &mut sql,
        "id",
        refused.into_iter().map(|(id, _)| id).collect(),
    );
    let mut tx = db.begin().await?;
    execute_in::<D>(&mut tx, &sql).await?;
    D::notify_work(&mut tx).await?;
    tx.commit().await.map_err(internal)?;
    db.work.notify_one();
    Ok(())
}
