//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it.
//!
//! Expiry is judged on this process's monotonic clock from when it last saw the
//! Lease record change, never by comparing our wall clock with the holder's
//! `renewTime`, so clock skew between replicas cannot make two of them lead.
//! Every write carries the `resourceVersion` it read: the apiserver's optimistic
//! concurrency is the lock.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

/// Why leader election stopped while leading.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leadership of lease {0} was taken by another replica")]
    Lost(String),
    #[error("could not renew lease {lease} within its duration: {source}")]
    RenewFailed { lease: String, source: kube::Error },
}

/// Settings for one elector.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease_name: String,
    /// Unique per process: pod name plus a random suffix.
    pub identity: String,
    pub lease_duration: Duration,
    pub retry_period: Duration,
}

/// What a leader-election round concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Round {
    Leading,
    Following,
}

/// Runs leader election until `shutdown` fires, publishing leadership on `leading`.
///
/// Returns `Err` when leadership was held and then lost: the caller must stop
/// writing at once (the process exits, as controller-runtime does).
pub async fn run(
    client: Client,
    settings: LeaderElection,
    leading: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LeaderError> {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let mut observed: Option<(String, Instant)> = None;
    let mut was_leading = false;
    loop {
        match round(&api, &settings, &mut observed).await {
            Ok(Round::Leading) => {
                if !was_leading {
                    info!(lease = %settings.lease_name, identity = %settings.identity, "acquired leadership");
                }
                was_leading = true;
                leading.send_replace(true);
            }
            Ok(Round::Following) => {
                if was_leading {
                    warn!(lease = %settings.lease_name, "leadership lost to another holder");
                    leading.send_replace(false);
                    return Err(LeaderError::Lost(settings.lease_name.clone()));
                }
            }
            Err(e) => {
                // A leader that cannot renew within the lease duration must step down
                // before another replica may take over.
                warn!(error = %e, "leader election round failed");
                if was_leading
                    && observed
                        .as_ref()
                        .is_some_and(|(_, at)| at.elapsed() >= settings.lease_duration.mul_f32(0.8))
                {
                    leading.send_replace(false);
                    return Err(LeaderError::RenewFailed {
                        lease: settings.lease_name.clone(),
                        source: e,
                    });
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.retry_period) => {}
            _ = shutdown.changed() => {
                if was_leading {
                    release(&api, &settings).await;
                }
                leading.send_replace(false);
                return Ok(());
            }
        }
    }
}

async fn round(
    api: &Api<Lease>,
    s: &LeaderElection,
    observed: &mut Option<(String, Instant)>,
) -> Result<Round, kube::Error> {
    let now = MicroTime(Timestamp::now());
    let Some(lease) = api.get_opt(&s.lease_name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(s.lease_name.clone()),
                ..Default::default()
            },
            spec: Some(held_spec(s, now.clone(), now, 0)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(created) => {
                *observed = Some((record_key(&created), Instant::now()));
                Ok(Round::Leading)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Round::Following),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let key = record_key(&lease);
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let we_hold = holder.as_deref() == Some(s.identity.as_str());
    if !we_hold {
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
        let first_seen = match observed {
            Some((k, at)) if *k == key => *at,
            _ => {
                let at = Instant::now();
                *observed = Some((key, at));
                at
            }
        };
        if holder.is_some() && first_seen.elapsed() < duration {
            return Ok(Round::Following);
        }
    }
    let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!we_hold);
    let acquire = if we_hold {
        spec.acquire_time.clone().unwrap_or_else(|| now.clone())
    } else {
        now.clone()
    };
    let mut updated = lease.clone();
    updated.spec = Some(held_spec(s, acquire, now, transitions));
    match api
        .replace(&s.lease_name, &PostParams::default(), &updated)
        .await
    {
        Ok(replaced) => {
            *observed = Some((record_key(&replaced), Instant::now()));
            Ok(Round::Leading)
        }
        // Someone else wrote first: they won this round.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(Round::Following),
        Err(e) => Err(e),
    }
}

fn held_spec(
    s: &LeaderElection,
    acquire: MicroTime,
    renew: MicroTime,
    transitions: i32,
) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(s.identity.clone()),
        lease_duration_seconds: Some(s.lease_duration.as_secs().max(1) as i32),
        acquire_time: Some(acquire),
        renew_time: Some(renew),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

/// The part of a Lease whose change proves the holder is alive.
fn record_key(lease: &Lease) -> String {
    lease.metadata.resource_version.clone().unwrap_or_default()
}

/// Hands the Lease over at once on graceful shutdown, so a standby need not wait
/// for it to expire.
async fn release(api: &Api<Lease>, s: &LeaderElection) {
    let Ok(Some(mut lease)) = api.get_opt(&s.lease_name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(s.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    match api
        .replace(&s.lease_name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => info!(lease = %s.lease_name, "released leadership"),
        Err(e) => warn!(error = %e, "could not release the lease; it will expire"),
    }
}
