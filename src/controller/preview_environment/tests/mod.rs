//! The PreviewEnvironment steps end to end against an in-memory Forge
//! ([`fake_forge`]) and an in-memory Kubernetes ([`fake_cluster`]), no apiserver.
//!
//! [`Harness::pass`] runs one reconcile the way `mod.rs::apply` does (converge,
//! finish; save + stall on `Error::Invalid`; fail on anything else) and feeds the
//! status written back into the environment, as the apiserver would. Time is never
//! waited for: a test that needs a backoff to pass moves the recorded timestamp
//! into the past. Every harness checks, when dropped at the end of its test, that
//! no status it wrote said Ready while an applicable step condition was not True.

mod fake_cluster;
mod fake_forge;
mod forge_api;

mod adoption;
mod database;
mod deploy;
mod drift;
mod errors;
mod steps;
mod teardown;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::controller::Action;

use super::children;
use super::cluster::Cluster;
use super::inputs::{Credentials, Inputs};
use super::pass::{Pass, owner_tag, without_foreign_fields};
use super::teardown::tear_down;
use crate::api::conditions::{self, Conditioned, Kstatus, READY};
use crate::api::preview_environment::{PreviewEnvironment, PreviewEnvironmentSpec, PreviewEnvironmentStatus};
use crate::controller::Error;
use crate::forge::ensure::EnsureOptions;
use crate::logic::preview::Names;
use crate::logic::preview::status::StepCondition;

pub use fake_cluster::FakeCluster;
pub use fake_forge::{FakeForge, SERVER};

/// The drift interval of a Ready environment; a shorter requeue means "not Ready".
pub const REQUEUE: Duration = Duration::from_secs(3600);
/// Retries inside `ensure_*` without real waiting.
pub const FAST: EnsureOptions =
    EnsureOptions { attempts: 3, min_backoff: Duration::from_millis(1), max_backoff: Duration::from_millis(2) };
pub const UID: &str = "uid-1";
pub const DOMAIN: &str = "pr-1.preview.test";
pub const DATABASE: &str = "pr_1_shop";
pub const BASE_DOMAIN: &str = "preview.test";

/// What the FakeForge and the FakeCluster share: one clock ordering their
/// calls, and a crash point ("the operator dies right after Forge answered X").
#[derive(Default)]
pub struct World {
    seq: AtomicUsize,
    crash_after: Mutex<Option<&'static str>>,
    crashed: AtomicBool,
}

impl World {
    pub fn tick(&self) -> usize {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }

    /// After Forge has processed the next `method`, every further Forge call and
    /// status write fails, as if the operator died there.
    pub fn crash_after(&self, method: &'static str) {
        *self.crash_after.lock().unwrap() = Some(method);
    }

    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    /// The operator restarts.
    pub fn recover(&self) {
        self.crashed.store(false, Ordering::SeqCst);
    }

    fn after(&self, method: &str) {
        let mut point = self.crash_after.lock().unwrap();
        if *point == Some(method) {
            *point = None;
            self.crashed.store(true, Ordering::SeqCst);
        }
    }
}

/// The environment every test starts from: a database, two workers, a `.env`
/// entry, TLS, a deployment script and a head sha; no Redis, no graph.
pub fn spec() -> PreviewEnvironmentSpec {
    serde_json::from_value(serde_json::json!({
        "repository": "acme/shop",
        "pullRequest": 1,
        "branch": "feature/checkout",
        "headSha": "abc1234",
        "project": "shop",
        "className": "team-a",
        "database": {"strategy": "empty"},
        "env": [{"name": "MAIL_MAILER", "value": "log"}],
        "workers": [{"name": "default"}, {"name": "mail", "queue": "mail", "processes": 2}],
        "deploy": {"script": "cd $FORGE_SITE_PATH && php artisan migrate --force"}
    }))
    .expect("spec")
}

pub fn environment(spec: PreviewEnvironmentSpec) -> PreviewEnvironment {
    let mut env = PreviewEnvironment::new("pr-1", spec);
    env.metadata.uid = Some(UID.into());
    env.metadata.namespace = Some("previews".into());
    env.metadata.generation = Some(1);
    env
}

/// How one pass ended.
#[derive(Debug)]
pub enum Outcome {
    /// Converged (or waiting): come back after this long.
    Requeue(Duration),
    /// `Error::Invalid`: stalled with this reason.
    Stalled(&'static str),
    /// A retryable error (recorded by `fail`, or the write itself failed).
    Failed(Error),
}

impl Outcome {
    pub fn requeue(&self) -> Duration {
        match self {
            Outcome::Requeue(d) => *d,
            other => panic!("expected a requeue, got {other:?}"),
        }
    }

    pub fn stalled(&self) -> &'static str {
        match self {
            Outcome::Stalled(reason) => reason,
            other => panic!("expected a stall, got {other:?}"),
        }
    }

    pub fn error(&self) -> &Error {
        match self {
            Outcome::Failed(e) => e,
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}

pub struct Harness {
    pub env: PreviewEnvironment,
    pub world: Arc<World>,
    pub forge: Arc<FakeForge>,
    pub cluster: FakeCluster,
}

impl Harness {
    pub fn new(spec: PreviewEnvironmentSpec) -> Self {
        let world = Arc::new(World::default());
        Self {
            env: environment(spec),
            forge: Arc::new(FakeForge::new(world.clone())),
            cluster: FakeCluster::new(world.clone()),
            world,
        }
    }

    pub fn names(&self) -> Names {
        Names::derive(&self.env.spec, Some(BASE_DOMAIN)).expect("names")
    }

    pub fn owner_tag(&self) -> String {
        owner_tag(&self.env)
    }

    fn inputs(&self) -> Inputs {
        let dotenv: BTreeMap<String, String> =
            self.env.spec.env.iter().map(|e| (e.name.clone(), e.value.clone().unwrap_or_default())).collect();
        Inputs {
            effective: self.env.clone(),
            names: self.names(),
            target: crate::api::preview_environment::RecordedTarget {
                class_name: "team-a".into(),
                base_url: "http://forge.invalid/api".into(),
                organization: "acme".into(),
                server_id: SERVER as i64,
            },
            server: SERVER,
            forge: self.forge.clone(),
            dotenv,
            admin_url: None,
            credentials: Credentials {
                database_password: "db-password-1".into(),
                app_key: "base64:dGVzdC1rZXk=".into(),
            },
            credentials_secret: children::credentials_secret_name(&self.env),
        }
    }

    /// One reconcile, as `PreviewContext::apply` runs it, then the status the
    /// apiserver holds becomes the environment's (as the next watch event brings it).
    pub async fn pass(&mut self) -> Outcome {
        self.cluster.set_current(self.env.status.clone());
        let inputs = self.inputs();
        let outcome = {
            let mut pass = Pass::new(&self.env, &self.cluster, &inputs, REQUEUE).with_ensure_options(FAST);
            match pass.converge().await {
                Ok(next) => match pass.finish().await {
                    Ok(()) => {
                        let ready = conditions::is_true(&pass.status.conditions, READY);
                        assert_eq!(
                            next >= REQUEUE,
                            ready,
                            "the pass asked for the drift interval ({next:?}) iff the status it wrote says Ready"
                        );
                        assert!(!ready || pass.status.url.is_some(), "a Ready environment shows its URL");
                        Outcome::Requeue(next)
                    }
                    Err(e) => Outcome::Failed(e),
                },
                Err(Error::Invalid { reason, message }) => match pass.save().await {
                    Ok(()) => self.stall(reason, message).await,
                    Err(e) => Outcome::Failed(e),
                },
                Err(e) => {
                    let _ = pass.fail(&e).await;
                    Outcome::Failed(e)
                }
            }
        };
        self.env.status = self.cluster.current();
        outcome
    }

    /// `PreviewContext::stall` with `kit::stall`: re-read, Stalled, write, warn once.
    async fn stall(&self, reason: &'static str, message: String) -> Outcome {
        let current = self.cluster.current().map(without_foreign_fields);
        let mut status = current.clone().unwrap_or_default();
        status.on_stall(&message);
        let first = status.kstatus(self.env.metadata.generation, Kstatus::Stalled, reason, &message);
        if let Err(e) = self.cluster.write_status(&self.env, current.as_ref(), &status).await {
            return Outcome::Failed(e);
        }
        if first {
            self.cluster.event(&self.env, true, reason, "Validate", message).await;
        }
        Outcome::Stalled(reason)
    }

    /// Runs passes until Ready (at most `max`); returns how many it took.
    pub async fn until_ready(&mut self, max: usize) -> usize {
        for n in 1..=max {
            let outcome = self.pass().await;
            if self.is_ready() {
                return n;
            }
            assert!(matches!(outcome, Outcome::Requeue(_)), "pass {n} did not converge: {outcome:?}");
        }
        panic!("not Ready after {max} passes: {:#?}", self.status().conditions);
    }

    /// The teardown of a deleted environment (`deletionPolicy: Delete`).
    pub async fn tear_down(&self) -> Result<Action, Error> {
        tear_down(&self.env, &self.cluster, self.forge.as_ref(), SERVER, &self.names()).await
    }

    pub fn status(&self) -> &PreviewEnvironmentStatus {
        self.env.status.as_ref().expect("no status written yet")
    }

    pub fn status_mut(&mut self) -> &mut PreviewEnvironmentStatus {
        self.env.status.get_or_insert_with(Default::default)
    }

    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.env.status.as_ref().and_then(|s| conditions::get(&s.conditions, type_))
    }

    /// `(status, reason)` of a condition, `("", "")` when absent.
    pub fn cond(&self, type_: &str) -> (String, String) {
        self.condition(type_).map_or_else(Default::default, |c| (c.status.clone(), c.reason.clone()))
    }

    pub fn is_ready(&self) -> bool {
        self.env.status.as_ref().is_some_and(|s| conditions::is_true(&s.conditions, READY))
    }

    pub fn site_id(&self) -> u64 {
        self.status().site_id.expect("no site id recorded") as u64
    }

    /// A spec change: the apiserver bumps the generation.
    pub fn edit_spec(&mut self, f: impl FnOnce(&mut PreviewEnvironmentSpec)) {
        f(&mut self.env.spec);
        self.env.metadata.generation = self.env.metadata.generation.map(|g| g + 1);
    }

    /// Moves a condition's `lastTransitionTime` `by` into the past.
    pub fn age_condition(&mut self, type_: &str, by: Duration) {
        let c = self.status_mut().conditions.iter_mut().find(|c| c.type_ == type_).expect("no such condition");
        c.last_transition_time = Time(past(c.last_transition_time.0, by));
    }

    /// Moves `lastDeployment.finishedAt` `by` into the past.
    pub fn age_last_deployment(&mut self, by: Duration) {
        let last = self.status_mut().last_deployment.as_mut().expect("no deployment recorded");
        let finished = last.finished_at.as_ref().expect("deployment not finished").0;
        last.finished_at = Some(Time(past(finished, by)));
    }

    /// No status written by this harness says Ready while a step that applies is not True.
    pub fn assert_invariants(&self) {
        for (i, w) in self.cluster.writes().iter().enumerate() {
            if !conditions::is_true(&w.status.conditions, READY) {
                continue;
            }
            for step in StepCondition::ALL {
                let applies = match step {
                    StepCondition::DatabaseReady => w.database,
                    StepCondition::DependenciesReady => w.dependencies,
                    _ => true,
                };
                assert!(
                    !applies || conditions::is_true(&w.status.conditions, step.as_str()),
                    "write #{i} says Ready while {} is not True: {:#?}",
                    step.as_str(),
                    w.status.conditions
                );
            }
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_invariants();
        }
    }
}

fn past(t: jiff::Timestamp, by: Duration) -> jiff::Timestamp {
    t.checked_sub(SignedDuration::try_from(by).expect("duration")).expect("timestamp")
}
