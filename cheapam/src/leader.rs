//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never both act.
//!
//! One attempt ([`LeaseLock::try_acquire_or_renew`]):
//! - no Lease: create it with us as holder (a 409 means someone else won: not leader);
//! - we hold it: renew (`renewTime = now`);
//! - someone else holds it and it is live: wait. Live means `renewTime +
//!   leaseDurationSeconds` is in the future by our clock, *or* we saw this exact record
//!   (holder, renewTime, resourceVersion) change less than `leaseDurationSeconds` ago by our
//!   monotonic clock (as client-go does), so clock skew between nodes cannot make two
//!   replicas act: a new replica waits one full lease duration before taking over a Lease
//!   that was not released;
//! - otherwise (expired or released): take it over.
//!
//! Every write is a replace carrying the `resourceVersion` we read, so two replicas racing
//! for an expired Lease cannot both win: the loser gets 409 and backs off.

use crate::health::{Health, Part};
use crate::{Error, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use kube::Client;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// We hold the Lease until at least this time.
    Leader,
    /// Someone else holds a live Lease.
    Follower { holder: String },
    /// Lost a write race (409): back off and try again later.
    Conflict,
}

pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// The other holder's record as last seen, and when (monotonic) it was first seen.
    observed: std::sync::Mutex<Option<(String, std::time::Instant)>>,
}

impl std::fmt::Debug for LeaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseLock")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("duration", &self.duration)
            .finish()
    }
}

/// Whether a Lease held by someone else is still live at `now`.
pub fn is_live(spec: &LeaseSpec, now: Timestamp) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() {
        return false;
    }
    let (Some(renew), Some(secs)) = (spec.renew_time.as_ref(), spec.lease_duration_seconds) else {
        return false;
    };
    renew.0 + SignedDuration::from_secs(i64::from(secs)) > now
}

impl LeaseLock {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
            observed: std::sync::Mutex::new(None),
        }
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    fn secs(&self) -> i32 {
        i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// One acquire-or-renew attempt now.
    pub async fn try_acquire_or_renew(&self) -> Result<LeaseOutcome> {
        self.attempt(Timestamp::now(), Instant::now().into_std())
            .await
    }

    /// Whether the other holder's record changed less than a lease duration ago (by our
    /// monotonic clock `local`). Records a new observation.
    fn recently_observed(&self, lease: &Lease, local: std::time::Instant) -> bool {
        let spec = lease.spec.clone().unwrap_or_default();
        let key = format!(
            "{}|{:?}|{}",
            spec.holder_identity.unwrap_or_default(),
            spec.renew_time.map(|t| t.0),
            lease.metadata.resource_version.clone().unwrap_or_default()
        );
        let mut observed = self.observed.lock().expect("observed lock");
        match observed.as_ref() {
            Some((k, at)) if *k == key => local.saturating_duration_since(*at) < self.duration,
            _ => {
                *observed = Some((key, local));
                true
            }
        }
    }

    /// One acquire-or-renew attempt at wall time `now` and monotonic time `local`.
    pub async fn attempt(&self, now: Timestamp, local: std::time::Instant) -> Result<LeaseOutcome> {
        let current = match self.api.get_opt(&self.name).await? {
            Some(l) => l,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(self.secs()),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(LeaseOutcome::Leader),
                    Err(e) => match Error::from(e) {
                        Error::Conflict(_) => Ok(LeaseOutcome::Conflict),
                        e => Err(e),
                    },
                };
            }
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mut next = current.clone();
        let mut new_spec = spec.clone();
        if holder == self.identity {
            new_spec.renew_time = Some(MicroTime(now));
            new_spec.lease_duration_seconds = Some(self.secs());
        } else if !holder.is_empty()
            // `|`, not `||`: the observation must be recorded even when the wall clock says live.
            && (is_live(&spec, now) | self.recently_observed(&current, local))
        {
            return Ok(LeaseOutcome::Follower { holder });
        } else {
            new_spec.holder_identity = Some(self.identity.clone());
            new_spec.lease_duration_seconds = Some(self.secs());
            new_spec.acquire_time = Some(MicroTime(now));
            new_spec.renew_time = Some(MicroTime(now));
            new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        next.spec = Some(new_spec);
        // `next.metadata.resourceVersion` is the one we read: the apiserver refuses the
        // replace with 409 if anyone wrote in between.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(LeaseOutcome::Leader),
            Err(e) => match Error::from(e) {
                Error::Conflict(_) => Ok(LeaseOutcome::Conflict),
                e => Err(e),
            },
        }
    }

    /// Give the Lease up (on shutdown) so a successor need not wait for it to expire.
    pub async fn release(&self) -> Result<()> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }
}

/// Keep trying to acquire, then keep renewing. Publishes `true` on `leader` while we hold
/// the Lease and `false` the moment we may no longer act:
///
/// - every attempt is bounded in time: while leading, by the renew deadline (two thirds of
///   the lease duration after the last successful renewal started); a hung request cannot
///   delay the step-down;
/// - when no renewal succeeded within the renew deadline, or another replica holds the
///   Lease, we step down (publish `false`) and go back to being a candidate: the process
///   keeps running and leads again once it can (an apiserver outage is no restart);
/// - every attempt's outcome is reported to `health` ([`Part::Lease`]).
///
/// Returns when `stop` fires, after releasing the Lease if we hold it. The caller fires
/// `stop` only once its work has stopped, so a successor never overlaps with it.
pub async fn run(
    lock: LeaseLock,
    leader: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
    health: Arc<Health>,
) -> Result<()> {
    let retry = (lock.duration() / 3).max(Duration::from_millis(200));
    let renew_deadline = lock.duration() * 2 / 3;
    // When the last successful renewal (or acquisition) started.
    let mut renewed: Option<Instant> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let started = Instant::now();
        let deadline = match renewed {
            Some(t) => t + renew_deadline,
            None => started + renew_deadline,
        };
        let outcome = tokio::select! {
            r = tokio::time::timeout_at(deadline, lock.try_acquire_or_renew()) => {
                r.unwrap_or_else(|_| Err(Error::Timeout("Lease request".into())))
            }
            _ = stop.changed() => break,
        };
        match outcome {
            Ok(LeaseOutcome::Leader) => {
                health.ok(Part::Lease);
                if renewed.is_none() {
                    info!(identity = %lock.identity, lease = %lock.name, "became leader");
                }
                renewed = Some(started);
                leader.send_replace(true);
            }
            Ok(LeaseOutcome::Follower { holder }) => {
                health.ok(Part::Lease);
                if renewed.take().is_some() {
                    warn!(%holder, "Lease taken by another replica: stepping down");
                    leader.send_replace(false);
                }
                tracing::debug!(%holder, "Lease held by another replica; waiting");
            }
            Ok(LeaseOutcome::Conflict) => {
                health.ok(Part::Lease);
                tracing::debug!("Lease write conflict; backing off");
            }
            Err(e) => {
                health.failed(Part::Lease, &e);
                warn!(error = %e, "Lease attempt failed");
            }
        }
        if renewed.is_some_and(|t| t.elapsed() >= renew_deadline) {
            warn!(
                ?renew_deadline,
                "could not renew the Lease in time: stepping down, staying candidate"
            );
            renewed = None;
            leader.send_replace(false);
        }
        let mut wake = Instant::now() + retry;
        if let Some(t) = renewed {
            // Never sleep past the renew deadline.
            wake = wake.min(t + renew_deadline);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = stop.changed() => break,
        }
    }
    leader.send_replace(false);
    if renewed.is_some() {
        match tokio::time::timeout(renew_deadline, lock.release()).await {
            Ok(Ok(())) => info!("Lease released"),
            Ok(Err(e)) => warn!(error = %e, "releasing the Lease failed"),
            Err(_) => warn!("releasing the Lease timed out"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::mock_client;
    use http::Method;
    use serde_json::json;
    use std::time::Instant;

    const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/cheapam";

    fn lock(client: Client) -> LeaseLock {
        LeaseLock::new(
            client,
            "kube-system",
            "cheapam",
            "me",
            Duration::from_secs(15),
        )
    }

    fn lease(holder: &str, renew: &str, rv: &str) -> serde_json::Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "cheapam", "namespace": "kube-system", "resourceVersion": rv},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": renew,
                     "leaseTransitions": 3}
        })
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn fresh_lease_of_another_holder_is_respected() {
        let (client, mut api) = mock_client();
        let scenario = tokio::spawn(async move {
            api.expect(Method::GET, PATH)
                .await
                .respond(200, lease("other", "2026-01-01T00:00:10.000000Z", "7"));
            // No write follows: the handle drops here, any further call fails.
        });
        let out = lock(client)
            .attempt(t("2026-01-01T00:00:20Z"), Instant::now())
            .await
            .unwrap();
        crate::fixtures::timeout_after_1s(scenario).await;
        assert_eq!(
            out,
            LeaseOutcome::Follower {
                holder: "other".into()
            }
        );
    }

    #[tokio::test]
    async fn expired_lease_is_taken_over_with_resource_version_guard() {
        let (client, mut api) = mock_client();
        let scenario = tokio::spawn(async move {
            // Seen for the first time: even though renewTime looks old by our clock (the
            // holder's clock may be behind), wait one lease duration of our own.
            api.expect(Method::GET, PATH)
                .await
                .respond(200, lease("other", "2026-01-01T00:00:10.000000Z", "7"));
            // Same record a lease duration later: the holder is gone.
            api.expect(Method::GET, PATH)
                .await
                .respond(200, lease("other", "2026-01-01T00:00:10.000000Z", "7"));
            let call = api.expect(Method::PUT, &format!("{PATH}?")).await;
            assert_eq!(call.body["metadata"]["resourceVersion"], "7");
            assert_eq!(call.body["spec"]["holderIdentity"], "me");
            assert_eq!(call.body["spec"]["leaseTransitions"], 4);
            assert_eq!(call.body["spec"]["leaseDurationSeconds"], 15);
            assert_eq!(
                call.body["spec"]["renewTime"],
                "2026-01-01T00:00:46.000000Z"
            );
            assert_eq!(
                call.body["spec"]["acquireTime"],
                "2026-01-01T00:00:46.000000Z"
            );
            let body = call.body.clone();
            call.respond(200, body);
        });
        let lock = lock(client);
        let t0 = Instant::now();
        // renewTime + 15 s = 00:00:25 < 00:00:30: expired by the wall clock, but not yet observed.
        let first = lock.attempt(t("2026-01-01T00:00:30Z"), t0).await.unwrap();
        assert_eq!(
            first,
            LeaseOutcome::Follower {
                holder: "other".into()
            }
        );
        let second = lock
            .attempt(t("2026-01-01T00:00:46Z"), t0 + Duration::from_secs(16))
            .await
            .unwrap();
        crate::fixtures::timeout_after_1s(scenario).await;
        assert_eq!(second, LeaseOutcome::Leader);
    }

    #[tokio::test]
    async fn renewing_holder_with_skewed_clock_is_respected() {
        let (client, mut api) = mock_client();
        let scenario = tokio::spawn(async move {
            // The holder's clock is a minute behind ours: by wall clock its Lease always
            // looks expired, but it keeps changing, so it is alive.
            for (renew, rv) in [
                ("2026-01-01T00:00:00.000000Z", "7"),
                ("2026-01-01T00:00:05.000000Z", "8"),
            ] {
                api.expect(Method::GET, PATH)
                    .await
                    .respond(200, lease("other", renew, rv));
            }
        });
        let lock = lock(client);
        let t0 = Instant::now();
        let a = lock.attempt(t("2026-01-01T00:01:00Z"), t0).await.unwrap();
        let b = lock
            .attempt(t("2026-01-01T00:01:20Z"), t0 + Duration::from_secs(20))
            .await
            .unwrap();
        crate::fixtures::timeout_after_1s(scenario).await;
        assert!(matches!(a, LeaseOutcome::Follower { .. }));
        assert!(matches!(b, LeaseOutcome::Follower { .. }));
    }

    #[tokio::test]
    async fn losing_the_write_race_backs_off() {
        let (client, mut api) = mock_client();
        let scenario = tokio::spawn(async move {
            api.expect(Method::GET, PATH)
                .await
                .respond(200, lease("", "2026-01-01T00:00:10.000000Z", "7"));
            api.expect(Method::PUT, &format!("{PATH}?"))
                .await
                .respond_status(409, "Conflict");
        });
        let out = lock(client)
            .attempt(t("2026-01-01T00:01:00Z"), Instant::now())
            .await
            .unwrap();
        crate::fixtures::timeout_after_1s(scenario).await;
        assert_eq!(out, LeaseOutcome::Conflict);
    }

    #[tokio::test]
    async fn own_lease_is_renewed() {
        let (client, mut api) = mock_client();
        let scenario = tokio::spawn(async move {
            api.expect(Method::GET, PATH)
                .await
                .respond(200, lease("me", "2026-01-01T00:00:10.000000Z", "8"));
            let call = api.expect(Method::PUT, &format!("{PATH}?")).await;
            assert_eq!(call.body["metadata"]["resourceVersion"], "8");
            assert_eq!(
                call.body["spec"]["renewTime"],
                "2026-01-01T00:00:15.000000Z"
            );
            assert_eq!(
                call.body["spec"]["leaseTransitions"], 3,
                "no transition on renew"
            );
            let body = call.body.clone();
            call.respond(200, body);
        });
        let out = lock(client)
            .attempt(t("2026-01-01T00:00:15Z"), Instant::now())
            .await
            .unwrap();
        crate::fixtures::timeout_after_1s(scenario).await;
        assert_eq!(out, LeaseOutcome::Leader);
    }

    #[tokio::test]
    async fn missing_lease_is_created() {
        let (client, mut api) = mock_client();
        let scenario = tokio::spawn(async move {
            api.expect(Method::GET, PATH)
                .await
                .respond_status(404, "NotFound");
            let call = api
                .expect(
                    Method::POST,
                    "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases?",
                )
                .await;
            assert_eq!(call.body["metadata"]["name"], "cheapam");
            assert_eq!(call.body["spec"]["holderIdentity"], "me");
            let body = call.body.clone();
            call.respond(201, body);
        });
        let out = lock(client)
            .attempt(t("2026-01-01T00:00:15Z"), Instant::now())
            .await
            .unwrap();
        crate::fixtures::timeout_after_1s(scenario).await;
        assert_eq!(out, LeaseOutcome::Leader);
    }

    #[tokio::test]
    async fn elector_publishes_leadership_and_releases_on_stop() {
        let (client, mut api) = mock_client();
        let (leader_tx, mut leader_rx) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        let health = Arc::new(Health::default());
        let elector = tokio::spawn(run(lock(client), leader_tx, stop_rx, health));
        // Acquire (create).
        api.expect(Method::GET, PATH)
            .await
            .respond_status(404, "NotFound");
        let call = api
            .expect(
                Method::POST,
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases?",
            )
            .await;
        let created = call.body.clone();
        call.respond(201, created.clone());
        leader_rx.wait_for(|l| *l).await.unwrap();
        // Stop: the Lease is released (holder cleared, resourceVersion-guarded).
        stop_tx.send(true).unwrap();
        let mut held = created;
        held["metadata"]["resourceVersion"] = json!("9");
        api.expect(Method::GET, PATH).await.respond(200, held);
        let call = api.expect(Method::PUT, &format!("{PATH}?")).await;
        assert_eq!(call.body["metadata"]["resourceVersion"], "9");
        assert!(
            call.body["spec"].get("holderIdentity").is_none(),
            "{}",
            call.body
        );
        let body = call.body.clone();
        call.respond(200, body);
        elector.await.unwrap().unwrap();
        assert!(!*leader_rx.borrow());
    }

    /// A renewal that never gets an answer (a hung connection) must not keep us leading:
    /// leadership ends at the renew deadline (10 s of a 15 s Lease after the last renewal
    /// started), and the elector stays a candidate and leads again once the apiserver
    /// answers. (Virtual time: the test takes no real 10 s.)
    #[tokio::test(start_paused = true)]
    async fn hung_renewal_steps_down_at_the_deadline_and_stays_candidate() {
        let (client, mut api) = mock_client();
        let (leader_tx, mut leader_rx) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        let health = Arc::new(Health::new(Duration::from_secs(3600)));
        let elector = tokio::spawn(run(lock(client), leader_tx, stop_rx, health));
        api.expect(Method::GET, PATH)
            .await
            .respond_status(404, "NotFound");
        let call = api
            .expect(
                Method::POST,
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases?",
            )
            .await;
        let mut held = call.body.clone();
        call.respond(201, held.clone());
        leader_rx.wait_for(|l| *l).await.unwrap();
        let acquired = tokio::time::Instant::now();
        // The next renewal: the GET is answered, the PUT hangs.
        held["metadata"]["resourceVersion"] = json!("9");
        api.expect(Method::GET, PATH)
            .await
            .respond(200, held.clone());
        let hung = api.expect(Method::PUT, &format!("{PATH}?")).await;
        tokio::time::timeout(Duration::from_secs(60), leader_rx.wait_for(|l| !*l))
            .await
            .expect("stepped down although the renewal hangs")
            .unwrap();
        let led = acquired.elapsed();
        assert!(
            led <= Duration::from_secs(10) + Duration::from_millis(100),
            "led {led:?} after the last renewal"
        );
        // Still a candidate: it tries again, and leads again when the Lease is still ours.
        let _ = hung; // the hung request is abandoned
        api.expect(Method::GET, PATH)
            .await
            .respond(200, held.clone());
        let call = api.expect(Method::PUT, &format!("{PATH}?")).await;
        let body = call.body.clone();
        call.respond(200, body.clone());
        leader_rx.wait_for(|l| *l).await.unwrap();
        assert!(!elector.is_finished(), "the elector keeps running");
        stop_tx.send(true).unwrap();
        api.expect(Method::GET, PATH).await.respond(200, body);
        let call = api.expect(Method::PUT, &format!("{PATH}?")).await;
        let body = call.body.clone();
        call.respond(200, body);
        elector.await.unwrap().unwrap();
    }

    /// Another replica took the Lease over (we were cut off): step down, stay candidate.
    #[tokio::test(start_paused = true)]
    async fn lease_taken_over_steps_down_without_exiting() {
        let (client, mut api) = mock_client();
        let (leader_tx, mut leader_rx) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        let elector = tokio::spawn(run(
            lock(client),
            leader_tx,
            stop_rx,
            Arc::new(Health::default()),
        ));
        api.expect(Method::GET, PATH)
            .await
            .respond(200, lease("me", "2026-01-01T00:00:10.000000Z", "7"));
        let call = api.expect(Method::PUT, &format!("{PATH}?")).await;
        let body = call.body.clone();
        call.respond(200, body);
        leader_rx.wait_for(|l| *l).await.unwrap();
        api.expect(Method::GET, PATH)
            .await
            .respond(200, lease("other", "2026-01-01T00:00:30.000000Z", "8"));
        leader_rx.wait_for(|l| !*l).await.unwrap();
        // Candidate again: the next attempt comes.
        api.expect(Method::GET, PATH)
            .await
            .respond(200, lease("other", "2026-01-01T00:00:35.000000Z", "9"));
        assert!(!elector.is_finished());
        stop_tx.send(true).unwrap();
        elector.await.unwrap().unwrap();
        assert!(!*leader_rx.borrow());
    }

    /// Two replicas against one (fake) apiserver that enforces resourceVersions.
    #[tokio::test]
    async fn two_replicas_never_both_lead_and_hand_over() {
        let fake = crate::fakes::FakeApiserver::default();
        let a = LeaseLock::new(
            fake.client(),
            "kube-system",
            "cheapam",
            "a",
            Duration::from_secs(15),
        );
        let b = LeaseLock::new(
            fake.client(),
            "kube-system",
            "cheapam",
            "b",
            Duration::from_secs(15),
        );
        let t0 = Instant::now();
        let now = t("2026-01-01T00:00:00Z");
        // Both race for a missing Lease: exactly one wins.
        let (ra, rb) = tokio::join!(a.attempt(now, t0), b.attempt(now, t0));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let leaders = [&ra, &rb]
            .iter()
            .filter(|o| ***o == LeaseOutcome::Leader)
            .count();
        assert_eq!(leaders, 1, "{ra:?} {rb:?}");
        let (leader, follower) = if ra == LeaseOutcome::Leader {
            (&a, &b)
        } else {
            (&b, &a)
        };
        // Rounds of renew + attempt: the follower never becomes leader while renewals go on,
        // even far beyond one lease duration.
        for i in 1..=10u64 {
            let now = t("2026-01-01T00:00:00Z") + SignedDuration::from_secs(5 * i as i64);
            let local = t0 + Duration::from_secs(5 * i);
            assert_eq!(
                leader.attempt(now, local).await.unwrap(),
                LeaseOutcome::Leader
            );
            assert!(matches!(
                follower.attempt(now, local).await.unwrap(),
                LeaseOutcome::Follower { .. }
            ));
        }
        // The leader releases on shutdown: the follower takes over at once.
        leader.release().await.unwrap();
        let now = t("2026-01-01T00:01:00Z");
        let local = t0 + Duration::from_secs(60);
        assert_eq!(
            follower.attempt(now, local).await.unwrap(),
            LeaseOutcome::Leader
        );
        assert!(matches!(
            leader.attempt(now, local).await.unwrap(),
            LeaseOutcome::Follower { .. }
        ));
    }

    /// A leader that stops renewing (crashed) is replaced only after a full lease duration.
    #[tokio::test]
    async fn crashed_leader_is_replaced_after_lease_duration() {
        let fake = crate::fakes::FakeApiserver::default();
        let a = LeaseLock::new(
            fake.client(),
            "kube-system",
            "cheapam",
            "a",
            Duration::from_secs(15),
        );
        let b = LeaseLock::new(
            fake.client(),
            "kube-system",
            "cheapam",
            "b",
            Duration::from_secs(15),
        );
        let t0 = Instant::now();
        let now = t("2026-01-01T00:00:00Z");
        assert_eq!(a.attempt(now, t0).await.unwrap(), LeaseOutcome::Leader);
        // a crashes. b keeps trying every 5 s.
        for s in [0u64, 5, 10, 14] {
            let out = b
                .attempt(
                    now + SignedDuration::from_secs(s as i64),
                    t0 + Duration::from_secs(s),
                )
                .await
                .unwrap();
            assert!(
                matches!(out, LeaseOutcome::Follower { .. }),
                "at +{s}s: {out:?}"
            );
        }
        let out = b
            .attempt(
                now + SignedDuration::from_secs(16),
                t0 + Duration::from_secs(16),
            )
            .await
            .unwrap();
        assert_eq!(out, LeaseOutcome::Leader);
    }

    #[test]
    fn liveness() {
        let spec = LeaseSpec {
            holder_identity: Some("x".into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(t("2026-01-01T00:00:10Z"))),
            ..LeaseSpec::default()
        };
        assert!(is_live(&spec, t("2026-01-01T00:00:24Z")));
        assert!(!is_live(&spec, t("2026-01-01T00:00:26Z")));
        let released = LeaseSpec {
            holder_identity: None,
            ..spec
        };
        assert!(!is_live(&released, t("2026-01-01T00:00:11Z")));
    }
}
