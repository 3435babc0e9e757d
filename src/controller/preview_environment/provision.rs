//! Converging one environment: a step per remote object, in dependency order.
//!
//! Each step observes before it acts (by recorded id, then by deterministic name),
//! records new ids in status right away, and either finishes or reports what it
//! waits for. Steps that do not depend on each other (Redis, database, site) all
//! run in one pass, so their async work on Forge overlaps.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::inputs::{Inputs, owner_reference};
use super::{MANAGER, PreviewContext};
use crate::api::conditions::{self, READY, RECONCILING, STALLED, Status};
use crate::api::preview_environment::{
    CloneStrategy, DeploymentRequest, DeploymentStatus, PreviewEnvironment, PreviewEnvironmentStatus,
};
use crate::api::shared_resource_claim::{
    ClaimPhase, ReclaimPolicy, ResourceType, SharedResourceClaim, SharedResourceClaimSpec,
};
use crate::backends::mysql::MysqlAdmin;
use crate::controller::{Error, apply_status, publish};
use crate::forge::ensure::{self, EnsureOptions};
use crate::forge::{
    CreateBackgroundProcess, CreateDatabase, CreateDatabaseUser, CreateDomain, CreateSite, ForgeError, PutEnvironment,
    RequestCertificate, Site,
};
use crate::logic::preview::{self, DeployAction, DeployTarget, Generated, ObservedWorker, RecordedDeployment};

pub const DATABASE_READY: &str = "DatabaseReady";
pub const SITE_READY: &str = "SiteReady";
pub const ENVIRONMENT_READY: &str = "EnvironmentReady";
pub const WORKERS_READY: &str = "WorkersReady";
pub const CERTIFICATE_READY: &str = "CertificateReady";
pub const DEPLOYED: &str = "Deployed";
pub const DEPENDENCIES_READY: &str = "DependenciesReady";

/// Every per-step condition, in the order the steps run.
const STEPS: [&str; 7] =
    [DATABASE_READY, SITE_READY, ENVIRONMENT_READY, WORKERS_READY, CERTIFICATE_READY, DEPENDENCIES_READY, DEPLOYED];

/// Tables copied at once by `clone`.
const CLONE_PARALLELISM: usize = 4;

/// The outcome of one step.
enum Step {
    Done,
    Waiting { reason: &'static str, message: String },
}

/// Tag that marks a Forge site as created by this object (Forge has no labels).
pub fn owner_tag(env: &PreviewEnvironment) -> String {
    format!("switchyard-{}", env.uid().unwrap_or_default())
}

/// Time since `t`, zero if `t` is in the future (clock skew between writers).
fn elapsed_since(t: Timestamp) -> Duration {
    Duration::from_secs_f64(Timestamp::now().duration_since(t).as_secs_f64().max(0.0))
}

/// Turns a Forge failure into a controller error: what Forge will never accept is
/// terminal (Stalled), the rest is retried.
pub fn forge_error(e: ForgeError) -> Error {
    match e {
        ForgeError::Unauthorized { .. } => Error::Invalid {
            reason: "ForgeUnauthorized",
            message: "Forge rejected the API token; update the token Secret".into(),
        },
        ForgeError::Forbidden { message } => {
            Error::Invalid { reason: "ForgeForbidden", message: format!("Forge refused: {message} (token scopes?)") }
        }
        ForgeError::Validation { message, errors } => {
            let detail: Vec<String> =
                errors.iter().map(|(field, msgs)| format!("{field}: {}", msgs.join(" "))).collect();
            Error::Invalid { reason: "ForgeRejected", message: format!("{message} {}", detail.join("; ")) }
        }
        other => Error::Forge(other),
    }
}

/// The status without fields other controllers own under their own field manager
/// (the PR comment's `pullRequestComment`): applying a stale copy of them would
/// take them back.
pub fn without_foreign_fields(mut status: PreviewEnvironmentStatus) -> PreviewEnvironmentStatus {
    status.pull_request_comment = None;
    status
}

/// One reconcile of one environment.
pub struct Run<'a> {
    api: &'a Api<PreviewEnvironment>,
    env: &'a PreviewEnvironment,
    pctx: &'a PreviewContext,
    inputs: Inputs,
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
    opts: EnsureOptions,
}

impl<'a> Run<'a> {
    pub fn new(
        api: &'a Api<PreviewEnvironment>,
        env: &'a PreviewEnvironment,
        pctx: &'a PreviewContext,
        inputs: Inputs,
    ) -> Self {
        let saved = env.status.clone().map(without_foreign_fields);
        let mut status = saved.clone().unwrap_or_default();
        status.observed_generation = env.metadata.generation;
        status.domain = Some(inputs.names.domain.clone());
        status.credentials_secret = Some(inputs.credentials_secret.clone());
        Self {
            api,
            env,
            pctx,
            inputs,
            status,
            saved,
            site: None,
            drift_check: false,
            poll: None,
            opts: EnsureOptions::default(),
        }
    }

    fn generation(&self) -> Option<i64> {
        self.env.metadata.generation
    }

    fn server(&self) -> u64 {
        self.inputs.server
    }

    /// A step that converged for this generation and needs no look on this pass.
    /// Forge's 60 requests a minute are the scarce resource: a pass triggered by a
    /// status write or a neighbour's change spends them only on unfinished steps.
    fn settled(&self, type_: &str) -> bool {
        !self.drift_check
            && conditions::get(&self.status.conditions, type_)
                .is_some_and(|c| c.status == "True" && c.observed_generation == self.generation())
    }

    /// Runs every step that can run now.
    /// Returns when to look again: soon while Forge works, the drift interval once Ready.
    pub async fn converge(&mut self) -> Result<Duration, Error> {
        let was_ready = conditions::is_true(&self.status.conditions, READY);
        self.drift_check = was_ready;
        let redis = self.redis().await?;
        let database = self.database().await?;
        self.save().await?;
        let site = self.site().await?;
        self.save().await?;
        let site_done = matches!(site, Step::Done);
        let mut upstream_done = matches!((&redis, &database), (Step::Done, Step::Done)) && site_done;
        self.record(DATABASE_READY, database);
        self.record(SITE_READY, site);
        if let Step::Waiting { reason, message } = redis {
            self.wait(ENVIRONMENT_READY, reason, message);
        }
        if site_done {
            let seeded = self.seed_by_dump().await?;
            if let Step::Waiting { reason, message } = seeded {
                upstream_done = false;
                self.wait(DATABASE_READY, reason, message);
            }
            let workers = self.workers().await?;
            self.record(WORKERS_READY, workers);
            let tls = self.certificate().await?;
            self.record(CERTIFICATE_READY, tls);
            self.save().await?;
        }
        if upstream_done {
            let environment = self.environment(was_ready).await?;
            let env_done = matches!(environment, Step::Done);
            self.record(ENVIRONMENT_READY, environment);
            if env_done {
                self.deploy_settings().await?;
                if self.dependencies_ready().await? {
                    let deployed = self.deploy().await?;
                    self.record(DEPLOYED, deployed);
                }
            }
        }
        Ok(self.summarize())
    }

    /// Gating by the RepoDependencyGraph: deploys wait for the environments of the
    /// repository's dependencies in the same stack (provisioning does not).
    async fn dependencies_ready(&mut self) -> Result<bool, Error> {
        let generation = self.generation();
        match super::gate::deploy(self.env, self.pctx).await? {
            None => {
                self.status.conditions.retain(|c| c.type_ != DEPENDENCIES_READY);
                Ok(true)
            }
            Some(crate::logic::gating::Gate::Open) => {
                let message = "dependencies in the stack are Ready";
                let reason = crate::logic::gating::DEPENDENCIES_READY;
                conditions::set(
                    &mut self.status.conditions,
                    DEPENDENCIES_READY,
                    Status::True,
                    reason,
                    message,
                    generation,
                );
                Ok(true)
            }
            Some(crate::logic::gating::Gate::Wait(wait)) => {
                conditions::set(
                    &mut self.status.conditions,
                    DEPENDENCIES_READY,
                    Status::False,
                    wait.reason,
                    wait.message.clone(),
                    generation,
                );
                self.wait(DEPLOYED, "WaitingForDependencies", format!("not deploying yet: {}", wait.message));
                Ok(false)
            }
        }
    }

    /// Sets the step's condition from its outcome, with a per-step reason.
    fn record(&mut self, type_: &'static str, step: Step) {
        match step {
            Step::Done => {
                let generation = self.generation();
                let message = match type_ {
                    DATABASE_READY => {
                        format!("database {} is ready", self.status.database_name.clone().unwrap_or_default())
                    }
                    SITE_READY => format!("site {} is installed", self.inputs.names.domain),
                    ENVIRONMENT_READY => ".env is up to date".to_string(),
                    WORKERS_READY => format!("{} queue worker(s) installed", self.status.worker_ids.len()),
                    CERTIFICATE_READY if !self.env.spec.tls.lets_encrypt => "TLS is disabled".to_string(),
                    CERTIFICATE_READY => "Let's Encrypt certificate is active".to_string(),
                    _ => "deployed".to_string(),
                };
                let reason = if type_ == DEPLOYED { "DeploymentFinished" } else { "Ready" };
                conditions::set(&mut self.status.conditions, type_, Status::True, reason, message, generation);
            }
            Step::Waiting { reason, message } => self.wait(type_, reason, message),
        }
    }

    /// Marks a step as waiting, and asks for a poll whose interval grows with how
    /// long the step has been waiting already.
    fn wait(&mut self, type_: &str, reason: &'static str, message: String) {
        let status =
            if matches!(reason, "CertificateFailed" | "DeploymentFailed") { Status::False } else { Status::Unknown };
        let generation = self.generation();
        conditions::set(&mut self.status.conditions, type_, status, reason, message, generation);
        let waited = conditions::get(&self.status.conditions, type_)
            .map_or(Duration::ZERO, |c| elapsed_since(c.last_transition_time.0));
        self.poll_in(preview::poll_interval(waited));
    }

    fn poll_in(&mut self, d: Duration) {
        self.poll = Some(self.poll.map_or(d, |p| p.min(d)));
    }

    /// Ready, Reconciling and Stalled from the step conditions, and when to come back.
    fn summarize(&mut self) -> Duration {
        let generation = self.generation();
        if self.env.spec.database.is_none() {
            self.status.conditions.retain(|c| c.type_ != DATABASE_READY);
        }
        conditions::set(&mut self.status.conditions, STALLED, Status::False, "Progressing", "", generation);
        match self.first_unready() {
            None => {
                let scheme = if self.env.spec.tls.lets_encrypt { "https" } else { "http" };
                let url = format!("{scheme}://{}", self.inputs.names.domain);
                self.status.url = Some(url.clone());
                conditions::set(
                    &mut self.status.conditions,
                    READY,
                    Status::True,
                    "Ready",
                    format!("{url} is live"),
                    generation,
                );
                conditions::set(&mut self.status.conditions, RECONCILING, Status::False, "Ready", "", generation);
                let interval = self.pctx.ctx.requeue_interval();
                interval + interval.mul_f64(rand::random::<f64>() * 0.1)
            }
            Some(step) => {
                self.not_ready(step);
                self.poll.unwrap_or(Duration::from_secs(5))
            }
        }
    }

    /// The first step, in order, whose condition is not True.
    fn first_unready(&self) -> Option<&'static str> {
        STEPS
            .iter()
            .copied()
            .filter(|t| *t != DATABASE_READY || self.env.spec.database.is_some())
            .filter(|t| *t != DEPENDENCIES_READY || self.env.spec.graph_ref.is_some())
            .find(|t| !conditions::is_true(&self.status.conditions, t))
    }

    /// Ready False and Reconciling (unless the step failed) with the step's reason.
    fn not_ready(&mut self, step: &str) {
        let generation = self.generation();
        let (reason, message) = conditions::get(&self.status.conditions, step)
            .map(|c| (c.reason.clone(), c.message.clone()))
            .unwrap_or_else(|| ("Provisioning".into(), format!("waiting for {step}")));
        let failed = matches!(reason.as_str(), "CertificateFailed" | "DeploymentFailed");
        conditions::set(&mut self.status.conditions, READY, Status::False, &reason, message.clone(), generation);
        conditions::set(
            &mut self.status.conditions,
            RECONCILING,
            (!failed).into(),
            &reason,
            if failed { String::new() } else { message },
            generation,
        );
    }

    /// Writes status if it changed (so recorded ids survive a crash right after).
    /// A step found drifted mid-pass takes Ready down in the same write: no status
    /// the apiserver holds says Ready while a step it depends on is not.
    pub async fn save(&mut self) -> Result<(), Error> {
        if conditions::is_true(&self.status.conditions, READY)
            && let Some(step) = self.first_unready()
        {
            self.not_ready(step);
        }
        apply_status(self.api, self.env, self.saved.as_ref(), &self.status, MANAGER).await?;
        self.saved = Some(self.status.clone());
        Ok(())
    }

    /// Final write, plus Events for the conditions that changed.
    pub async fn finish(&mut self) -> Result<(), Error> {
        let before = self.env.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
        self.save().await?;
        for type_ in STEPS.iter().chain([READY].iter()) {
            let Some(now) = conditions::get(&self.status.conditions, type_) else { continue };
            let old = conditions::get(&before, type_);
            let changed = old.is_none_or(|o| o.status != now.status || o.reason != now.reason);
            if !changed {
                continue;
            }
            if now.status == "True" {
                publish(&self.pctx.ctx, self.env, EventType::Normal, type_, "Reconcile", now.message.clone()).await;
            } else if now.status == "False" && type_ != &READY {
                let failure = matches!(now.reason.as_str(), "CertificateFailed" | "DeploymentFailed");
                let type_ = if failure { EventType::Warning } else { EventType::Normal };
                publish(&self.pctx.ctx, self.env, type_, &now.reason, "Reconcile", now.message.clone()).await;
            }
        }
        Ok(())
    }

    /// Records a retryable failure in status (the error policy retries).
    pub async fn fail(&mut self, error: &Error) -> Result<(), Error> {
        let generation = self.generation();
        let message = error.to_string();
        conditions::set(
            &mut self.status.conditions,
            RECONCILING,
            Status::True,
            error.metric_label(),
            message.clone(),
            generation,
        );
        conditions::set(&mut self.status.conditions, STALLED, Status::False, "Progressing", "", generation);
        if !conditions::is_true(&self.status.conditions, READY) {
            conditions::set(
                &mut self.status.conditions,
                READY,
                Status::False,
                error.metric_label(),
                message,
                generation,
            );
        }
        self.save().await
    }

    // ---- steps ----

    /// A SharedResourceClaim (owned by the environment) for a Redis database number.
    async fn redis(&mut self) -> Result<Step, Error> {
        let Some(settings) = &self.env.spec.redis else {
            self.status.redis_claim = None;
            self.status.redis_database = None;
            return Ok(Step::Done);
        };
        let name = super::inputs::redis_claim_name(self.env);
        let api: Api<SharedResourceClaim> =
            Api::namespaced(self.pctx.ctx.client.clone(), &self.env.namespace().unwrap_or_default());
        let claim = match api.get_opt(&name).await? {
            Some(claim) => claim,
            None => {
                let claim = SharedResourceClaim {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        owner_references: Some(vec![owner_reference(self.env)]),
                        labels: Some([("app.kubernetes.io/managed-by".to_string(), "switchyard".to_string())].into()),
                        ..Default::default()
                    },
                    spec: SharedResourceClaimSpec {
                        type_: ResourceType::RedisDatabase,
                        pool: settings.pool.clone(),
                        value: None,
                        mode: Default::default(),
                        capacity: None,
                        ttl: None,
                        renewed_at: None,
                        conflict_policy: Default::default(),
                        reclaim_policy: ReclaimPolicy::Delete,
                    },
                    status: None,
                };
                match api.create(&PostParams::default(), &claim).await {
                    Ok(c) => c,
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        return Err(Error::Waiting("claim created concurrently".into()));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        self.status.redis_claim = Some(name.clone());
        let status = claim.status.unwrap_or_default();
        if status.phase == Some(ClaimPhase::Bound)
            && let Some(db) = status.value.as_deref().and_then(|v| v.parse::<i32>().ok())
        {
            self.status.redis_database = Some(db);
            return Ok(Step::Done);
        }
        let why = conditions::get(&status.conditions, READY).map(|c| c.message.clone()).unwrap_or_default();
        Ok(Step::Waiting {
            reason: "WaitingForRedis",
            message: format!("claim {name} is not Bound yet {why}").trim().into(),
        })
    }

    /// The schema and user on Forge, then the `clone` fill.
    async fn database(&mut self) -> Result<Step, Error> {
        let Some(settings) = self.env.spec.database.clone() else {
            return Ok(Step::Done);
        };
        if self.settled(DATABASE_READY) && self.status.database_id.is_some() && self.status.database_user_id.is_some() {
            return Ok(Step::Done);
        }
        let forge = self.inputs.forge.clone();
        let server = self.server();
        let names = self.inputs.names.clone();
        let schema = match self.status.database_id {
            Some(id) => match forge.get_database(server, id as u64).await {
                Ok(d) if d.name == names.database && d.status != "removing" => Some(d),
                Ok(_) => None,
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(forge_error(e)),
            },
            None => None,
        };
        let schema = match schema {
            Some(s) => s,
            None => {
                self.claim_database_names().await?;
                let req = CreateDatabase { name: names.database.clone(), ..Default::default() };
                ensure::ensure_database(&*forge, server, &req, self.opts).await.map_err(forge_error)?.value
            }
        };
        self.status.database_id = Some(schema.id as i64);
        self.status.database_name = Some(schema.name.clone());
        let user = match self.status.database_user_id {
            Some(id) => match forge.get_database_user(server, id as u64).await {
                Ok(u) if u.name == names.database_user && u.status != "removing" => Some(u),
                Ok(_) => None,
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(forge_error(e)),
            },
            None => None,
        };
        let user = match user {
            Some(u) => u,
            None => {
                let req = CreateDatabaseUser {
                    name: names.database_user.clone(),
                    password: crate::forge::Password::new(self.inputs.credentials.database_password.clone()),
                    database_ids: vec![schema.id],
                    read_only: None,
                };
                ensure::ensure_database_user(&*forge, server, &req, self.opts).await.map_err(forge_error)?.value
            }
        };
        self.status.database_user_id = Some(user.id as i64);
        self.status.database_user = Some(user.name.clone());
        if schema.status != "installed" || user.status != "installed" {
            return Ok(Step::Waiting {
                reason: "DatabaseProvisioning",
                message: format!("schema {} is {}, user {} is {}", schema.name, schema.status, user.name, user.status),
            });
        }
        match settings.strategy {
            CloneStrategy::Empty => self.status.database_seeded = Some(true),
            CloneStrategy::Clone if self.status.database_seeded != Some(true) => {
                let (Some(url), Some(snapshot)) = (self.inputs.admin_url.as_deref(), settings.snapshot.as_deref())
                else {
                    return Err(Error::Invalid {
                        reason: "SnapshotMissing",
                        message: "strategy clone needs snapshot and adminCredentialsSecretRef".into(),
                    });
                };
                let admin = MysqlAdmin::new(url)
                    .map_err(|e| Error::Invalid { reason: "AdminCredentialsInvalid", message: e.message })?;
                let result = admin.clone_database(snapshot, &schema.name, CLONE_PARALLELISM).await;
                admin.disconnect().await;
                let report = result?;
                tracing::info!(env = %self.env.name_any(), tables = report.tables, views = report.views, triggers = report.triggers, "database cloned from {snapshot}");
                self.status.database_seeded = Some(true);
            }
            CloneStrategy::Clone | CloneStrategy::Dump => {}
        }
        Ok(Step::Done)
    }

    /// Databases carry no tags on Forge, so an environment claims its database and
    /// user names in status before creating either. A schema or user with that name
    /// that exists before the claim belongs to someone else (another environment of
    /// the same project and pull request, or one made by hand): it is neither
    /// adopted nor, when this environment is deleted, dropped.
    async fn claim_database_names(&mut self) -> Result<(), Error> {
        if self.status.database_name.is_some() {
            return Ok(());
        }
        let forge = self.inputs.forge.clone();
        let server = self.server();
        let names = self.inputs.names.clone();
        let taken = if ensure::find_database(&*forge, server, &names.database).await.map_err(forge_error)?.is_some() {
            Some(format!("database {}", names.database))
        } else if ensure::find_database_user(&*forge, server, &names.database_user)
            .await
            .map_err(forge_error)?
            .is_some()
        {
            Some(format!("database user {}", names.database_user))
        } else {
            None
        };
        if let Some(taken) = taken {
            return Err(Error::Invalid {
                reason: "DatabaseNameTaken",
                message: format!(
                    "Forge server {server} already has a {taken} that this environment did not create; \
                     delete it or give this environment another spec.project"
                ),
            });
        }
        self.status.database_name = Some(names.database);
        self.status.database_user = Some(names.database_user);
        self.save().await
    }

    /// The `dump` fill: `mysqldump | mysql` as a Forge site command, run once. The
    /// command names no credentials: it relies on the site user's MySQL client config.
    async fn seed_by_dump(&mut self) -> Result<Step, Error> {
        let Some(settings) = &self.env.spec.database else { return Ok(Step::Done) };
        if settings.strategy != CloneStrategy::Dump || self.status.database_seeded == Some(true) {
            return Ok(Step::Done);
        }
        let (Some(site), Some(snapshot), Some(target)) =
            (self.status.site_id, settings.snapshot.as_deref(), self.status.database_name.clone())
        else {
            return Ok(Step::Waiting {
                reason: "DatabaseProvisioning",
                message: "waiting for the site and schema".into(),
            });
        };
        let command = format!("mysqldump --single-transaction --routines --triggers {snapshot} | mysql {target}");
        let forge = self.inputs.forge.clone();
        let (server, site) = (self.server(), site as u64);
        let newest = forge.list_site_commands(server, site, Some(&command), Some(5)).await.map_err(forge_error)?;
        let latest = newest.into_iter().filter(|c| c.command == command).max_by_key(|c| c.id);
        match latest {
            Some(c) if c.status == "finished" => {
                self.status.database_seeded = Some(true);
                Ok(Step::Done)
            }
            Some(c) if !c.is_terminal() => {
                Ok(Step::Waiting { reason: "DatabaseSeeding", message: format!("dump of {snapshot} is {}", c.status) })
            }
            previous => {
                if previous.is_some() {
                    tracing::warn!(env = %self.env.name_any(), "dump of {snapshot} failed; running it again");
                }
                ensure::run_command(&*forge, server, site, &command, self.opts).await.map_err(forge_error)?;
                Ok(Step::Waiting { reason: "DatabaseSeeding", message: format!("dumping {snapshot} into {target}") })
            }
        }
    }

    /// The Forge site: by recorded id, else by name (only if it carries our tag),
    /// else created. A site deleted out of band is created again.
    async fn site(&mut self) -> Result<Step, Error> {
        let forge = self.inputs.forge.clone();
        let server = self.server();
        let domain = self.inputs.names.domain.clone();
        let tag = owner_tag(self.env);
        if self.settled(SITE_READY) && self.status.site_id.is_some() {
            return Ok(Step::Done);
        }
        let mut site: Option<Site> = None;
        if let Some(id) = self.status.site_id {
            match forge.get_site(id as u64).await {
                Ok(s) if s.status != "removing" && s.name == domain => site = Some(s),
                Ok(_) => {}
                Err(e) if e.is_not_found() => {
                    publish(
                        &self.pctx.ctx,
                        self.env,
                        EventType::Warning,
                        "SiteMissing",
                        "Reconcile",
                        format!("site {id} ({domain}) is gone from Forge; creating it again"),
                    )
                    .await;
                    self.forget_site();
                }
                Err(e) => return Err(forge_error(e)),
            }
        }
        let site = match site {
            Some(s) => s,
            None => match ensure::find_site(&*forge, server, &domain).await.map_err(forge_error)? {
                Some(found) if !found.tags.contains(&tag) => {
                    return Err(Error::Invalid {
                        reason: "SiteNameTaken",
                        message: format!(
                            "Forge server {server} already has a site {domain} that this environment did not create; \
                             choose another domain or delete that site"
                        ),
                    });
                }
                Some(found) if found.status == "removing" => {
                    return Ok(Step::Waiting {
                        reason: "SiteRemoving",
                        message: format!("old site {domain} is still being removed"),
                    });
                }
                Some(found) => found,
                None => {
                    let created = ensure::ensure_site(&*forge, server, &self.site_request(&tag), self.opts)
                        .await
                        .map_err(forge_error)?
                        .value;
                    if !created.tags.is_empty() && !created.tags.contains(&tag) {
                        return Err(Error::Invalid {
                            reason: "SiteNameTaken",
                            message: format!("site {domain} was created concurrently by someone else"),
                        });
                    }
                    created
                }
            },
        };
        if self.status.site_id != Some(site.id as i64) {
            self.forget_site();
            self.status.site_id = Some(site.id as i64);
        }
        if site.status == "installed"
            && site.php_version.as_deref().is_some_and(|v| v != self.env.spec.site.php_version)
        {
            let update = crate::forge::UpdateSite {
                php_version: Some(self.env.spec.site.php_version.clone()),
                ..Default::default()
            };
            forge.update_site(server, site.id, &update).await.map_err(forge_error)?;
        }
        let ready = site.is_ready();
        let status = site.status.clone();
        self.site = Some(site);
        if !ready {
            return Ok(Step::Waiting { reason: "SiteInstalling", message: format!("site {domain} is {status}") });
        }
        Ok(Step::Done)
    }

    fn site_request(&self, tag: &str) -> CreateSite {
        let spec = &self.env.spec;
        let site_type = serde_json::to_value(spec.site.type_).ok().and_then(|v| v.as_str().map(String::from));
        let mut req =
            CreateSite::custom_domain(&self.inputs.names.domain, site_type.unwrap_or_else(|| "laravel".into()));
        req.web_directory = Some(spec.site.web_directory.clone());
        req.php_version = Some(spec.site.php_version.clone());
        req.is_isolated = Some(spec.site.isolated);
        req.isolated_user = self.inputs.names.isolated_user.clone();
        req.source_control_provider = Some("github".into());
        req.repository = Some(spec.repository.clone());
        req.branch = Some(spec.branch.clone());
        req.push_to_deploy = Some(spec.deploy.push_to_deploy);
        req.tags = Some(vec!["switchyard".into(), tag.to_string()]);
        req
    }

    /// Forgets what lived on a site that is gone (Forge deletes workers with it),
    /// and the conditions that vouched for it: a replaced site has none of its workers, certificate or deployment
    /// yet, and no status write in between may say otherwise.
    fn forget_site(&mut self) {
        let generation = self.generation();
        for type_ in [SITE_READY, ENVIRONMENT_READY, WORKERS_READY, CERTIFICATE_READY, DEPLOYED] {
            if conditions::is_true(&self.status.conditions, type_) {
                let message = "the site is being replaced";
                conditions::set(
                    &mut self.status.conditions,
                    type_,
                    Status::Unknown,
                    "SiteReplaced",
                    message,
                    generation,
                );
            }
        }
        let s = &mut self.status;
        s.site_id = None;
        s.environment_hash = None;
        s.worker_ids.clear();
        s.domain_id = None;
        s.certificate_id = None;
        s.certificate_failures = None;
        s.last_deployment = None;
        s.deployment_request = None;
        if self.env.spec.database.as_ref().is_some_and(|d| d.strategy == CloneStrategy::Dump) {
            s.database_seeded = None;
        }
    }

    fn site_id(&self) -> u64 {
        self.status.site_id.unwrap_or_default() as u64
    }

    /// The `.env`: written only when its hash differs from the last write; on a
    /// drift check of a Ready environment, the file on Forge is compared too.
    async fn environment(&mut self, drift_check: bool) -> Result<Step, Error> {
        let names = &self.inputs.names;
        let scheme = if self.env.spec.tls.lets_encrypt { "https" } else { "http" };
        let generated = Generated {
            app_url: format!("{scheme}://{}", names.domain),
            app_key: Some(self.inputs.credentials.app_key.clone()),
            database: self.env.spec.database.as_ref().map(|_| {
                (names.database.clone(), names.database_user.clone(), self.inputs.credentials.database_password.clone())
            }),
            redis: self.status.redis_database.map(|db| (db as u32, names.redis_prefix.clone())),
        };
        let content = preview::render_env(&generated, &self.inputs.env);
        let hash = preview::short_hash(&content)[..16].to_string();
        let (forge, server, site) = (self.inputs.forge.clone(), self.server(), self.site_id());
        let mut write = self.status.environment_hash.as_deref() != Some(hash.as_str());
        if !write && drift_check {
            let remote = forge.get_environment(server, site).await.map_err(forge_error)?;
            write = remote.trim_end() != content.trim_end();
        }
        if write {
            forge
                .put_environment(server, site, &PutEnvironment { environment: content, ..Default::default() })
                .await
                .map_err(forge_error)?;
            self.status.environment_hash = Some(hash);
        }
        Ok(Step::Done)
    }

    /// Makes the site's background processes equal the spec's queue workers.
    async fn workers(&mut self) -> Result<Step, Error> {
        if self.settled(WORKERS_READY) {
            return Ok(Step::Done);
        }
        let (forge, server, site_id) = (self.inputs.forge.clone(), self.server(), self.site_id());
        let observed = forge.list_background_processes(server, Some(site_id)).await.map_err(forge_error)?;
        let live: Vec<_> = observed.iter().filter(|p| p.status != "removing").collect();
        let as_observed: Vec<ObservedWorker> = live
            .iter()
            .map(|p| ObservedWorker { id: p.id, command: p.command.clone(), processes: p.processes })
            .collect();
        let plan = preview::plan_workers(&self.env.spec.workers, &as_observed);
        for id in &plan.delete {
            match forge.delete_background_process(server, *id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(forge_error(e)),
            }
        }
        // Workers are identified by their directory too: use the site's real root.
        if self.site.is_none() && !plan.create.is_empty() {
            self.site = Some(forge.get_site(site_id).await.map_err(forge_error)?);
        }
        let names = &self.inputs.names;
        let directory = self.site.as_ref().and_then(|s| s.root_directory.clone());
        let directory = directory.unwrap_or_else(|| format!("/home/{}/{}", names.site_user(), names.domain));
        let mut ids = plan.keep.clone();
        for worker in &plan.create {
            let req = CreateBackgroundProcess {
                name: format!("{}-{}", self.env.name_any(), worker.name),
                command: preview::worker_command(worker),
                user: self.inputs.names.site_user().to_string(),
                processes: worker.processes.max(1) as u32,
                site_id: Some(site_id),
                directory: Some(directory.clone()),
                startsecs: None,
                stopwaitsecs: None,
                stopsignal: None,
            };
            let created =
                ensure::ensure_background_process(&*forge, server, &req, self.opts).await.map_err(forge_error)?;
            ids.push(created.value.id);
        }
        self.status.worker_ids = ids.iter().map(|id| *id as i64).collect();
        let installing = live.iter().filter(|p| plan.keep.contains(&p.id) && p.status != "installed").count();
        if !plan.create.is_empty() || !plan.delete.is_empty() || installing > 0 {
            return Ok(Step::Waiting {
                reason: "WorkersInstalling",
                message: format!(
                    "{} created, {} removed, {} installing",
                    plan.create.len(),
                    plan.delete.len(),
                    installing
                ),
            });
        }
        Ok(Step::Done)
    }

    /// The Let's Encrypt certificate of the site's domain; a failed one is
    /// requested again with exponential backoff.
    async fn certificate(&mut self) -> Result<Step, Error> {
        if !self.env.spec.tls.lets_encrypt {
            self.status.certificate_id = None;
            self.status.certificate_failures = None;
            return Ok(Step::Done);
        }
        if self.settled(CERTIFICATE_READY) && self.status.certificate_id.is_some() {
            return Ok(Step::Done);
        }
        let (forge, server, site) = (self.inputs.forge.clone(), self.server(), self.site_id());
        let name = self.inputs.names.domain.clone();
        let domains = forge.list_domains(server, site).await.map_err(forge_error)?;
        let domain = match domains.into_iter().find(|d| d.name == name && d.status != "removing") {
            Some(d) => d,
            None => {
                let req = CreateDomain {
                    name: name.clone(),
                    allow_wildcard_subdomains: false,
                    www_redirect_type: "none".into(),
                };
                ensure::ensure_domain(&*forge, server, site, &req, self.opts).await.map_err(forge_error)?.value
            }
        };
        self.status.domain_id = Some(domain.id as i64);
        let certificates = forge.list_certificates(server, site, Some(domain.id)).await.map_err(forge_error)?;
        let current = certificates
            .into_iter()
            .filter(|c| !matches!(c.status.as_str(), "deleting" | "removing"))
            .max_by_key(|c| c.id);
        match current {
            Some(c) if c.is_active() => {
                self.status.certificate_id = Some(c.id as i64);
                self.status.certificate_failures = None;
                Ok(Step::Done)
            }
            Some(c) if c.is_failed() => {
                let known = self.status.certificate_id == Some(c.id as i64)
                    && conditions::get(&self.status.conditions, CERTIFICATE_READY)
                        .is_some_and(|k| k.reason == "CertificateFailed");
                if !known {
                    self.status.certificate_failures = Some(self.status.certificate_failures.unwrap_or(0) + 1);
                }
                self.status.certificate_id = Some(c.id as i64);
                let failures = self.status.certificate_failures.unwrap_or(1).max(1) as u32;
                let waited = conditions::get(&self.status.conditions, CERTIFICATE_READY)
                    .filter(|k| k.reason == "CertificateFailed")
                    .map_or(Duration::ZERO, |k| elapsed_since(k.last_transition_time.0));
                let backoff = preview::retry_backoff(failures);
                if known && waited >= backoff {
                    match forge.delete_certificate(server, site, domain.id, c.id).await {
                        Ok(()) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(forge_error(e)),
                    }
                    let new = forge
                        .request_certificate(server, site, domain.id, &RequestCertificate::letsencrypt())
                        .await
                        .map_err(forge_error)?;
                    self.status.certificate_id = Some(new.id as i64);
                    return Ok(Step::Waiting {
                        reason: "CertificateIssuing",
                        message: format!("retrying Let's Encrypt for {name} (attempt {})", failures + 1),
                    });
                }
                self.poll_in(backoff.saturating_sub(waited).max(Duration::from_secs(1)));
                Ok(Step::Waiting {
                    reason: "CertificateFailed",
                    message: format!(
                        "Let's Encrypt failed for {name} (is DNS pointing at the server?); retrying in {}s",
                        backoff.saturating_sub(waited).as_secs()
                    ),
                })
            }
            Some(c) => {
                self.status.certificate_id = Some(c.id as i64);
                Ok(Step::Waiting {
                    reason: "CertificateIssuing",
                    message: format!("certificate for {name} is {}", c.status),
                })
            }
            None => {
                let new = forge
                    .request_certificate(server, site, domain.id, &RequestCertificate::letsencrypt())
                    .await
                    .map_err(forge_error)?;
                self.status.certificate_id = Some(new.id as i64);
                Ok(Step::Waiting {
                    reason: "CertificateIssuing",
                    message: format!("requested a certificate for {name}"),
                })
            }
        }
    }

    /// The deployment script and push-to-deploy, when the spec sets them.
    async fn deploy_settings(&mut self) -> Result<(), Error> {
        if self.settled(DEPLOYED) {
            return Ok(());
        }
        let (forge, server, site) = (self.inputs.forge.clone(), self.server(), self.site_id());
        if let Some(script) = &self.env.spec.deploy.script {
            let current = forge.get_deployment_script(server, site).await.map_err(forge_error)?;
            if current.content.as_deref() != Some(script.as_str()) {
                forge.put_deployment_script(server, site, script, None).await.map_err(forge_error)?;
            }
        }
        Ok(())
    }

    /// Triggers a deployment when the sha, redeploy token or `.env` changed, follows
    /// it to its end, and retries a failed one with backoff.
    async fn deploy(&mut self) -> Result<Step, Error> {
        let (forge, server, site) = (self.inputs.forge.clone(), self.server(), self.site_id());
        let target = DeployTarget {
            sha: self.env.spec.head_sha.clone(),
            redeploy_token: self.env.spec.deploy.redeploy_token.clone(),
            environment_hash: self.status.environment_hash.clone(),
        };
        // A request recorded before a crash: adopt the deployment it started, if any.
        if let Some(request) = self.status.deployment_request.clone() {
            let newest = forge.list_deployments(server, site, Some(1)).await.map_err(forge_error)?.into_iter().next();
            let started = match newest {
                Some(d) if Some(d.id as i64) > request.after_id => d,
                _ => forge.trigger_deployment(server, site).await.map_err(forge_error)?,
            };
            self.status.last_deployment = Some(DeploymentStatus {
                id: started.id as i64,
                status: started.status.clone(),
                sha: request.sha.clone(),
                redeploy_token: request.redeploy_token.clone(),
                environment_hash: request.environment_hash.clone(),
                attempts: Some(request.attempt),
                started_at: Some(Time(Timestamp::now())),
                finished_at: None,
            });
            self.status.deployment_request = None;
            self.save().await?;
        }
        for _ in 0..2 {
            let recorded = self.status.last_deployment.as_ref().map(|d| RecordedDeployment {
                target: DeployTarget {
                    sha: d.sha.clone(),
                    redeploy_token: d.redeploy_token.clone(),
                    environment_hash: d.environment_hash.clone(),
                },
                status: d.status.clone(),
                attempts: d.attempts.unwrap_or(1).max(1) as u32,
                finished_ago: d.finished_at.as_ref().map(|t| elapsed_since(t.0)),
            });
            match preview::deploy_action(&target, recorded.as_ref()) {
                DeployAction::Done => return Ok(Step::Done),
                DeployAction::Follow => {
                    let Some(last) = self.status.last_deployment.as_mut() else { break };
                    let observed = match forge.get_deployment(server, site, last.id as u64).await {
                        Ok(d) => d,
                        Err(e) if e.is_not_found() => {
                            self.status.last_deployment = None;
                            continue;
                        }
                        Err(e) => return Err(forge_error(e)),
                    };
                    last.status = observed.status.clone();
                    if observed.is_terminal() {
                        last.finished_at = Some(Time(Timestamp::now()));
                        continue;
                    }
                    return Ok(Step::Waiting {
                        reason: "Deploying",
                        message: format!("deployment {} is {}", last.id, last.status),
                    });
                }
                DeployAction::RetryIn(wait) => {
                    self.poll_in(wait.max(Duration::from_secs(1)));
                    let last = self.status.last_deployment.as_ref().map(|d| d.id).unwrap_or_default();
                    return Ok(Step::Waiting {
                        reason: "DeploymentFailed",
                        message: format!("deployment {last} failed; retrying in {}s", wait.as_secs()),
                    });
                }
                DeployAction::Trigger { attempt } => {
                    let after = forge
                        .list_deployments(server, site, Some(1))
                        .await
                        .map_err(forge_error)?
                        .first()
                        .map(|d| d.id as i64);
                    self.status.deployment_request = Some(DeploymentRequest {
                        after_id: after,
                        sha: target.sha.clone(),
                        redeploy_token: target.redeploy_token.clone(),
                        environment_hash: target.environment_hash.clone(),
                        attempt: attempt as i32,
                        requested_at: Some(Time(Timestamp::now())),
                    });
                    // Recorded before triggering: a crash in between adopts, never doubles.
                    self.save().await?;
                    let started = forge.trigger_deployment(server, site).await.map_err(forge_error)?;
                    self.status.last_deployment = Some(DeploymentStatus {
                        id: started.id as i64,
                        status: started.status.clone(),
                        sha: target.sha.clone(),
                        redeploy_token: target.redeploy_token.clone(),
                        environment_hash: target.environment_hash.clone(),
                        attempts: Some(attempt as i32),
                        started_at: Some(Time(Timestamp::now())),
                        finished_at: None,
                    });
                    self.status.deployment_request = None;
                    return Ok(Step::Waiting {
                        reason: "Deploying",
                        message: format!("deployment {} queued", started.id),
                    });
                }
            }
        }
        Ok(Step::Waiting { reason: "Deploying", message: "looking at the newest deployment".into() })
    }
}
