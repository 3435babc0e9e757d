//! One pass over an environment: every step that can run now, in dependency
//! order, each in its own file under `pass/` (observe → decide → act).
//!
//! Each step observes before it acts (by recorded id, then by deterministic name),
//! records new ids in status right away, and either finishes or reports what it
//! waits for. Steps that do not depend on each other (Redis, database, site) all
//! run in one pass, so their async work on Forge overlaps. The conditions go
//! through `logic::preview::status`, the one state machine.

mod certificate;
mod database;
mod deploy;
mod environment;
mod redis;
mod site;
mod workers;

use std::time::Duration;

use jiff::Timestamp;

use super::cluster::Cluster;
use super::inputs::Inputs;
use crate::api::conditions;
use crate::api::preview_environment::{PreviewEnvironment, PreviewEnvironmentStatus};
use crate::controller::Error;
use crate::forge::ForgeApi;
use crate::forge::ensure::EnsureOptions;
use crate::forge::{Site, going_away};
use crate::logic::preview::status::{self, Applicable, Outcome, Reason, StepCondition};
use crate::logic::preview::{Names, poll_interval};

/// Tag that marks a Forge site as created by this object (Forge has no labels).
pub fn owner_tag(env: &PreviewEnvironment) -> String {
    format!("switchyard-{}", kube::ResourceExt::uid(env).unwrap_or_default())
}

/// Time since `t`, zero if `t` is in the future (clock skew between writers).
fn elapsed_since(t: Timestamp) -> Duration {
    Duration::from_secs_f64(Timestamp::now().duration_since(t).as_secs_f64().max(0.0))
}

/// The status without fields other controllers own under their own field manager
/// (the PR comment's `pullRequestComment`): applying a stale copy of them would
/// take them back.
pub fn without_foreign_fields(mut status: PreviewEnvironmentStatus) -> PreviewEnvironmentStatus {
    status.pull_request_comment = None;
    status
}

/// One reconcile of one environment.
pub struct Pass<'a> {
    env: &'a PreviewEnvironment,
    cluster: &'a dyn Cluster,
    inputs: &'a Inputs,
    /// The status being built; `saved` is what the apiserver has.
    pub status: PreviewEnvironmentStatus,
    saved: Option<PreviewEnvironmentStatus>,
    /// The site as last observed by the site step.
    site: Option<Site>,
    /// Whether this pass re-observes steps that already converged (a Ready
    /// environment's drift check); otherwise they cost no Forge request.
    drift_check: bool,
    /// Soonest poll any waiting step asked for.
    poll: Option<Duration>,
    /// How long a Ready environment waits for its next drift check.
    requeue_interval: Duration,
    opts: EnsureOptions,
}

impl<'a> Pass<'a> {
    pub fn new(
        env: &'a PreviewEnvironment,
        cluster: &'a dyn Cluster,
        inputs: &'a Inputs,
        requeue_interval: Duration,
    ) -> Self {
        let saved = env.status.clone().map(without_foreign_fields);
        let mut status = saved.clone().unwrap_or_default();
        status.observed_generation = env.metadata.generation;
        status.domain = Some(inputs.names.domain.clone());
        status.credentials_secret = Some(inputs.credentials_secret.clone());
        status.target = Some(inputs.target.clone());
        Self {
            env,
            cluster,
            inputs,
            status,
            saved,
            site: None,
            drift_check: false,
            poll: None,
            requeue_interval,
            opts: EnsureOptions::default(),
        }
    }

    /// Faster retries for tests of the steps (the defaults wait seconds between attempts).
    #[cfg(test)]
    pub fn with_ensure_options(mut self, opts: EnsureOptions) -> Self {
        self.opts = opts;
        self
    }

    fn generation(&self) -> Option<i64> {
        self.env.metadata.generation
    }

    fn server(&self) -> u64 {
        self.inputs.server
    }

    /// The Forge client, borrowed for the pass rather than from `self`, so steps
    /// can update status while a request is being built.
    fn forge(&self) -> &'a dyn ForgeApi {
        &*self.inputs.forge
    }

    /// The environment's names, borrowed for the pass like [`Pass::forge`].
    fn names(&self) -> &'a Names {
        &self.inputs.names
    }

    fn site_id(&self) -> u64 {
        self.status.site_id.unwrap_or_default() as u64
    }

    fn applicable(&self) -> Applicable {
        Applicable { database: self.env.spec.database.is_some(), dependencies: self.env.spec.graph_ref.is_some() }
    }

    /// A step that converged for this generation and needs no look on this pass.
    /// Forge's 60 requests a minute are the scarce resource: while an environment is
    /// not Ready, a pass (a status write, a neighbour's change) spends them only on
    /// unfinished steps. Once it is Ready, every pass is a drift check that looks at
    /// every step — also one triggered by something other than the drift interval
    /// (the ignored test `a_pass_on_a_ready_environment_not_due_for_a_drift_check…`
    /// says what a quieter design would do).
    fn settled(&self, step: StepCondition) -> bool {
        !self.drift_check && status::settled(&self.status.conditions, step, self.generation())
    }

    /// Runs every step that can run now.
    /// Returns when to look again: soon while Forge works, the drift interval once Ready.
    pub async fn converge(&mut self) -> Result<Duration, Error> {
        let was_ready = conditions::is_true(&self.status.conditions, conditions::READY);
        self.drift_check = was_ready;
        let redis = self.redis().await?;
        let database = self.database().await?;
        self.save().await?;
        let site = self.site().await?;
        self.save().await?;
        let site_done = site.is_done();
        let mut upstream_done = redis.is_done() && database.is_done() && site_done;
        self.record(StepCondition::DatabaseReady, database);
        self.record(StepCondition::SiteReady, site);
        if let Outcome::Waiting { reason, message } = redis {
            self.wait(StepCondition::EnvironmentReady, reason, message);
        }
        if site_done {
            if let Outcome::Waiting { reason, message } = self.seed_by_dump().await? {
                upstream_done = false;
                self.wait(StepCondition::DatabaseReady, reason, message);
            }
            let workers = self.workers().await?;
            self.record(StepCondition::WorkersReady, workers);
            let tls = self.certificate().await?;
            self.record(StepCondition::CertificateReady, tls);
            self.save().await?;
        }
        if upstream_done {
            let environment = self.environment(was_ready).await?;
            let env_done = environment.is_done();
            self.record(StepCondition::EnvironmentReady, environment);
            if env_done {
                self.deploy_settings().await?;
                if self.dependencies_ready().await? {
                    let deployed = self.deploy().await?;
                    self.record(StepCondition::Deployed, deployed);
                }
            }
        }
        Ok(self.summarize())
    }

    /// Gating by the RepoDependencyGraph: deploys wait for the environments of the
    /// repository's dependencies in the same stack (provisioning does not).
    async fn dependencies_ready(&mut self) -> Result<bool, Error> {
        use crate::api::conditions::Status;
        use crate::logic::gating::{self, Gate};
        let generation = self.generation();
        let type_ = StepCondition::DependenciesReady.as_str();
        match self.cluster.deploy_gate(self.env).await? {
            // No graph: the step does not apply (summarize drops its condition).
            None => Ok(true),
            Some(Gate::Open) => {
                let message = "dependencies in the stack are Ready";
                let reason = gating::DEPENDENCIES_READY;
                conditions::set(&mut self.status.conditions, type_, Status::True, reason, message, generation);
                Ok(true)
            }
            Some(Gate::Wait(wait)) => {
                let conds = &mut self.status.conditions;
                conditions::set(conds, type_, Status::False, wait.reason, wait.message.clone(), generation);
                let message = format!("not deploying yet: {}", wait.message);
                self.wait(StepCondition::Deployed, Reason::WaitingForDependencies, message);
                Ok(false)
            }
        }
    }

    /// Sets the step's condition from its outcome; a waiting step asks for a poll.
    fn record(&mut self, step: StepCondition, outcome: Outcome) {
        // A step that does not apply has no condition (summarize would drop it, one write later).
        if !self.applicable().contains(step) {
            return;
        }
        let generation = self.generation();
        match outcome {
            Outcome::Done(_) => status::record(&mut self.status.conditions, step, outcome, generation),
            Outcome::Waiting { reason, message } => self.wait(step, reason, message),
        }
    }

    /// Marks a step as waiting, and asks for a poll whose interval grows with how
    /// long the step has been waiting already.
    fn wait(&mut self, step: StepCondition, reason: Reason, message: String) {
        let generation = self.generation();
        status::record(&mut self.status.conditions, step, Outcome::Waiting { reason, message }, generation);
        let waited = conditions::get(&self.status.conditions, step.as_str())
            .map_or(Duration::ZERO, |c| elapsed_since(c.last_transition_time.0));
        self.poll_in(poll_interval(waited));
    }

    fn poll_in(&mut self, d: Duration) {
        self.poll = Some(self.poll.map_or(d, |p| p.min(d)));
    }

    fn url(&self) -> String {
        let scheme = if self.env.spec.tls.lets_encrypt { "https" } else { "http" };
        format!("{scheme}://{}", self.inputs.names.domain)
    }

    /// Ready, Reconciling and Stalled from the step conditions, and when to come back.
    fn summarize(&mut self) -> Duration {
        let url = self.url();
        let (applicable, generation) = (self.applicable(), self.generation());
        let ready = status::summarize(&mut self.status.conditions, applicable, &url, generation);
        if ready {
            self.status.url = Some(url);
            let interval = self.requeue_interval;
            interval + interval.mul_f64(rand::random::<f64>() * 0.1)
        } else {
            self.poll.unwrap_or(Duration::from_secs(5))
        }
    }

    /// Writes status if it changed (so recorded ids survive a crash right after).
    /// A step found drifted mid-pass takes Ready down in the same write: no status
    /// the apiserver holds says Ready while a step it depends on is not.
    pub async fn save(&mut self) -> Result<(), Error> {
        let (applicable, generation) = (self.applicable(), self.generation());
        status::guard(&mut self.status.conditions, applicable, generation);
        self.cluster.write_status(self.env, self.saved.as_ref(), &self.status).await?;
        self.saved = Some(self.status.clone());
        Ok(())
    }

    /// Final write, plus Events for the conditions that changed.
    pub async fn finish(&mut self) -> Result<(), Error> {
        let before = self.env.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
        self.save().await?;
        for (warning, reason, message) in status::transitions(&before, &self.status.conditions) {
            self.cluster.event(self.env, warning, &reason, "Reconcile", message).await;
        }
        Ok(())
    }

    /// Records a retryable failure in status (the error policy retries).
    pub async fn fail(&mut self, error: &Error) -> Result<(), Error> {
        let message = error.to_string();
        let generation = self.generation();
        status::failed_pass(&mut self.status.conditions, error.reason(), &message, generation);
        self.save().await
    }
}
