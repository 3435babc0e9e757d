//! An in-memory [`Cluster`]: records every status written (as the apiserver would
//! hold it) and every Event; the Redis claim and the deploy gate are set by the
//! test (the delete gate is always open).

use std::sync::{Arc, Mutex, MutexGuard};

use super::World;
use crate::api::preview_environment::{PreviewEnvironment, PreviewEnvironmentStatus};
use crate::api::shared_resource_claim::{ClaimPhase, SharedResourceClaim, SharedResourceClaimStatus};
use crate::controller::Error;
use crate::controller::preview_environment::children;
use crate::controller::preview_environment::cluster::Cluster;
use crate::logic::gating::Gate;

/// One status write, with what applied to the environment when it was written.
#[derive(Clone, Debug)]
pub struct Written {
    /// Orders the write against the FakeForge's calls.
    pub seq: usize,
    pub status: PreviewEnvironmentStatus,
    /// `spec.database` was set.
    pub database: bool,
    /// `spec.graphRef` was set.
    pub dependencies: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: String,
    pub action: String,
    pub note: String,
}

#[derive(Default)]
struct State {
    /// What the apiserver holds.
    current: Option<PreviewEnvironmentStatus>,
    writes: Vec<Written>,
    events: Vec<Event>,
    /// The claim's value once Bound; `None` keeps it Pending.
    redis: Option<String>,
    redis_pools: Vec<String>,
    releases: usize,
    /// `None`: the environment names no graph.
    deploy_gate: Option<Gate>,
}

pub struct FakeCluster {
    world: Arc<World>,
    state: Mutex<State>,
}

impl FakeCluster {
    pub fn new(world: Arc<World>) -> Self {
        Self { world, state: Mutex::new(State::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn crashed(&self) -> Result<(), Error> {
        if self.world.crashed() { Err(Error::Waiting("operator crashed".into())) } else { Ok(()) }
    }

    /// The status the apiserver holds.
    pub fn current(&self) -> Option<PreviewEnvironmentStatus> {
        self.lock().current.clone()
    }

    /// What the apiserver holds, as a test arranged it (edited timestamps, say).
    pub fn set_current(&self, status: Option<PreviewEnvironmentStatus>) {
        self.lock().current = status;
    }

    pub fn writes(&self) -> Vec<Written> {
        self.lock().writes.clone()
    }

    pub fn write_count(&self) -> usize {
        self.lock().writes.len()
    }

    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// Events with `reason`.
    pub fn events_named(&self, reason: &str) -> Vec<Event> {
        self.lock().events.iter().filter(|e| e.reason == reason).cloned().collect()
    }

    /// Binds the Redis claim to `value` (`None`: Pending).
    pub fn bind_redis(&self, value: Option<&str>) {
        self.lock().redis = value.map(String::from);
    }

    /// Pools the Redis claim was asked for, one entry per call.
    pub fn redis_pools(&self) -> Vec<String> {
        self.lock().redis_pools.clone()
    }

    pub fn releases(&self) -> usize {
        self.lock().releases
    }

    pub fn set_deploy_gate(&self, gate: Option<Gate>) {
        self.lock().deploy_gate = gate;
    }
}

#[async_trait::async_trait]
impl Cluster for FakeCluster {
    /// Like `apply_status`: nothing is written when `status` equals `saved`.
    async fn write_status(
        &self,
        env: &PreviewEnvironment,
        saved: Option<&PreviewEnvironmentStatus>,
        status: &PreviewEnvironmentStatus,
    ) -> Result<(), Error> {
        self.crashed()?;
        if saved == Some(status) {
            return Ok(());
        }
        let seq = self.world.tick();
        let mut s = self.lock();
        s.writes.push(Written {
            seq,
            status: status.clone(),
            database: env.spec.database.is_some(),
            dependencies: env.spec.graph_ref.is_some(),
        });
        s.current = Some(status.clone());
        Ok(())
    }

    async fn redis_claim(&self, env: &PreviewEnvironment, pool: &str) -> Result<SharedResourceClaim, Error> {
        self.crashed()?;
        let mut s = self.lock();
        s.redis_pools.push(pool.to_string());
        let mut claim = children::redis_claim(env, pool);
        claim.status = Some(match &s.redis {
            Some(value) => SharedResourceClaimStatus {
                phase: Some(ClaimPhase::Bound),
                value: Some(value.clone()),
                ..Default::default()
            },
            None => SharedResourceClaimStatus { phase: Some(ClaimPhase::Pending), ..Default::default() },
        });
        Ok(claim)
    }

    async fn release_redis(&self, _env: &PreviewEnvironment) -> Result<(), Error> {
        self.crashed()?;
        self.lock().releases += 1;
        Ok(())
    }

    async fn deploy_gate(&self, _env: &PreviewEnvironment) -> Result<Option<Gate>, Error> {
        self.crashed()?;
        Ok(self.lock().deploy_gate.clone())
    }

    async fn delete_gate(&self, _env: &PreviewEnvironment) -> Result<Gate, Error> {
        self.crashed()?;
        // Only `teardown::run` asks; `tear_down` is what these tests drive.
        Ok(Gate::Open)
    }

    async fn event(&self, _env: &PreviewEnvironment, warning: bool, reason: &str, action: &str, note: String) {
        if self.world.crashed() {
            return;
        }
        let event = Event { warning, reason: reason.into(), action: action.into(), note };
        self.lock().events.push(event);
    }
}
