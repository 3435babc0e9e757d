//! Branch: the cross-branch design's registration, health probing with hysteresis,
//! organization sync and license checks.
//!
//! load: the Branch, its credentials and CA Secrets, its parent (watch cache) and the
//! parent's organization source -> decide: `logic::branch_url` (may the operator call
//! it), `logic::registration` (what to send, whether again, parent loops),
//! `logic::health` (hysteresis, readiness), `logic::organization` -> apply: register
//! ([`registration`]), probe the instance, push the organization and check the license
//! ([`organization`]) -> status, Events on transitions, metrics. However long an
//! instance is down, nothing is deleted or deregistered.
//!
//! Every reconcile that probes is followed by one at the probe interval. Other
//! triggers (our own status writes, unrelated watch events) find the probe not yet
//! due and only requeue, so an instance is probed once per interval; a change of the
//! spec or of a referenced Secret makes the next reconcile probe at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, Shared};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use sha2::{Digest, Sha256};

use super::kit::k8s::{SecretProblem, read_secret_key};
use super::kit::{self, Reconciler};
use super::{Context, Error, apply_status, publish};
use crate::api::SecretKeyRef;
use crate::api::branch::{Branch, BranchStatus, OrganizationSourceKind};
use crate::api::conditions::{self, Conditioned, Kstatus, Status};
use crate::backends::instance::{Call, InstanceClient, Trust, is_bearer_token};

mod organization;
mod registration;
use crate::logic::duration;
use crate::logic::health::{self, Reachability, RegistrationState, Streak, Thresholds};
use crate::logic::registration as registry;
use crate::metrics::BranchLabels;

/// The instance answers its health probes (with hysteresis).
pub use crate::api::branch::REACHABLE;
pub use organization::{LICENSE_VALID, ORGANIZATION_SYNCED};
pub use registration::REGISTERED;
/// `spec.cordoned`: the instance gets no new work.
pub const CORDONED: &str = "Cordoned";

const MANAGER: &str = "switchyard-branches";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A probe this close to due counts as due (timers and clocks are not exact).
const SLACK: Duration = Duration::from_millis(50);
/// How often caches and metrics of deleted Branches are dropped.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// What the Branch reconciler shares besides the common [`Context`].
pub struct BranchContext {
    ctx: Arc<Context>,
    /// Watch cache of every Branch: parents, children and loops are looked up here.
    branches: Store<Branch>,
    /// When each Branch was last probed, and for which generation.
    cadence: Mutex<HashMap<ObjectRef<Branch>, Cadence>>,
    /// One HTTP client per Branch, rebuilt when its trust settings change.
    clients: Mutex<HashMap<ObjectRef<Branch>, (String, InstanceClient)>>,
    /// Branches whose Secrets changed: their next reconcile runs even if not due.
    dirty: Mutex<HashSet<ObjectRef<Branch>>>,
    /// Failed organization pushes per Branch, for the backoff.
    sync_backoff: Mutex<HashMap<ObjectRef<Branch>, organization::Backoff>>,
    /// The last license check per Branch, for the schedule.
    license_checks: Mutex<HashMap<ObjectRef<Branch>, organization::Checked>>,
}

struct Cadence {
    generation: Option<i64>,
    started: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Probe settings of a Branch, parsed once per reconcile.
struct Settings {
    interval: Duration,
    timeout: Duration,
    thresholds: Thresholds,
    /// Why `spec.healthCheck` does not parse: the Branch is Stalled, retried at the
    /// default interval. The schema's pattern rejects such values; one stored before
    /// it existed can still arrive.
    invalid: Option<String>,
}

impl Settings {
    fn of(branch: &Branch) -> Self {
        let hc = &branch.spec.health_check;
        let thresholds = Thresholds::new(hc.failure_threshold, hc.success_threshold);
        let parse = |key: &str, text: &str| duration::parse(text).map_err(|e| format!("spec.healthCheck.{key}: {e}"));
        match (parse("interval", &hc.interval), parse("timeout", &hc.timeout)) {
            (Ok(interval), Ok(timeout)) => Self { interval, timeout, thresholds, invalid: None },
            (Err(e), _) | (_, Err(e)) => {
                Self { interval: DEFAULT_INTERVAL, timeout: DEFAULT_TIMEOUT, thresholds, invalid: Some(e) }
            }
        }
    }
}

/// Runs the controller until `shutdown` resolves.
pub fn run(ctx: Arc<Context>, shutdown: Shared<BoxFuture<'static, ()>>) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let (branches, secrets, config_maps) =
            (ctx.watched::<Branch>(), ctx.watched::<Secret>(), ctx.watched::<ConfigMap>());
        let controller = Controller::new(branches, watcher::Config::default().any_semantic());
        let bctx = Arc::new(BranchContext {
            ctx,
            branches: controller.store(),
            cadence: Mutex::default(),
            clients: Mutex::default(),
            dirty: Mutex::default(),
            sync_backoff: Mutex::default(),
            license_checks: Mutex::default(),
        });
        let (mapper, cm_mapper) = (bctx.clone(), bctx.clone());
        let controller = controller
            .watches(secrets, watcher::Config::default(), move |secret: Secret| mapper.referencing(&secret))
            .watches(config_maps, watcher::Config::default(), move |cm: ConfigMap| {
                cm_mapper.referencing_config_map(&cm)
            });
        let controller = kit::run(controller, bctx.ctx.clone(), bctx.clone(), shutdown);
        tokio::select! {
            _ = controller => {}
            _ = sweep(bctx) => {}
        }
    })
}

impl BranchContext {
    fn branch(&self, namespace: &str, name: &str) -> Option<Arc<Branch>> {
        self.branches.get(&ObjectRef::new(name).within(namespace))
    }

    fn parent_of(&self, namespace: &str, name: &str) -> Option<String> {
        self.branch(namespace, name)?.spec.parent_ref.as_ref().map(|p| p.name.clone())
    }

    /// The Branches a Secret matters to: those naming it, and their children (who
    /// register with the parent's key over the parent's TLS). Marks them to run now.
    fn referencing(&self, secret: &Secret) -> Vec<ObjectRef<Branch>> {
        let namespace = secret.namespace();
        let name = secret.name_any();
        let all = self.branches.state();
        let in_namespace = || all.iter().filter(|b| b.namespace() == namespace);
        let direct: HashSet<String> = in_namespace()
            .filter(|b| {
                b.spec.credentials_secret_ref.name == name
                    || b.spec.tls.ca_secret_ref.as_ref().is_some_and(|r| r.name == name)
                    || names_organization(b, OrganizationSourceKind::Secret, &name)
            })
            .map(|b| b.name_any())
            .collect();
        let refs: Vec<ObjectRef<Branch>> = in_namespace()
            .filter(|b| {
                direct.contains(&b.name_any()) || b.spec.parent_ref.as_ref().is_some_and(|p| direct.contains(&p.name))
            })
            .map(|b| ObjectRef::from_obj(&**b))
            .collect();
        lock(&self.dirty).extend(refs.iter().cloned());
        refs
    }

    /// The children of Branches whose organization is this ConfigMap: they get it pushed.
    fn referencing_config_map(&self, cm: &ConfigMap) -> Vec<ObjectRef<Branch>> {
        let namespace = cm.namespace();
        let name = cm.name_any();
        let all = self.branches.state();
        let in_namespace = || all.iter().filter(|b| b.namespace() == namespace);
        let parents: HashSet<String> = in_namespace()
            .filter(|b| names_organization(b, OrganizationSourceKind::ConfigMap, &name))
            .map(|b| b.name_any())
            .collect();
        let refs: Vec<ObjectRef<Branch>> = in_namespace()
            .filter(|b| b.spec.parent_ref.as_ref().is_some_and(|p| parents.contains(&p.name)))
            .map(|b| ObjectRef::from_obj(&**b))
            .collect();
        lock(&self.dirty).extend(refs.iter().cloned());
        refs
    }

    /// `Ok` when a probe is due (and records it as started), else how long until it is.
    fn due(&self, oref: &ObjectRef<Branch>, generation: Option<i64>, interval: Duration) -> Result<(), Duration> {
        let forced = lock(&self.dirty).remove(oref);
        let mut cadence = lock(&self.cadence);
        if !forced
            && let Some(c) = cadence.get(oref)
            && c.generation == generation
            && c.started.elapsed() + SLACK < interval
        {
            return Err(interval - c.started.elapsed());
        }
        cadence.insert(oref.clone(), Cadence { generation, started: Instant::now() });
        Ok(())
    }

    /// After a failed reconcile the retry must run, not wait for the interval.
    fn forget(&self, oref: &ObjectRef<Branch>) {
        lock(&self.cadence).remove(oref);
    }

    /// The value of a Secret key in `namespace`, trimmed; an empty one counts as missing.
    async fn secret_value(&self, namespace: &str, key_ref: &SecretKeyRef) -> Result<Result<String, Missing>, Error> {
        let secrets: Api<Secret> = Api::namespaced(self.ctx.client.clone(), namespace);
        Ok(match read_secret_key(&secrets, &key_ref.name, &key_ref.key).await? {
            Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            Ok(_) => Err(Missing::Key(format!("Secret {} has no non-empty text key {:?}", key_ref.name, key_ref.key))),
            Err(p @ SecretProblem::Missing { .. }) => Err(Missing::Secret(p.to_string())),
            Err(p) => Err(Missing::Key(p.to_string())),
        })
    }

    /// The client for talking to `branch`'s instance, trusting what its spec says.
    async fn client_for(&self, branch: &Branch) -> Result<Result<InstanceClient, (&'static str, String)>, Error> {
        let namespace = branch.namespace().unwrap_or_default();
        let tls = &branch.spec.tls;
        let ca = match &tls.ca_secret_ref {
            None => None,
            Some(ca_ref) => match self.secret_value(&namespace, ca_ref).await? {
                Ok(pem) => Some(pem),
                Err(Missing::Secret(m)) => return Ok(Err(("CASecretMissing", m))),
                Err(Missing::Key(m)) => return Ok(Err(("CAKeyMissing", m))),
            },
        };
        let (fingerprint, trust) = match &ca {
            Some(pem) => (hex::encode(Sha256::digest(pem.as_bytes())), Trust::Ca(pem.as_bytes())),
            None if tls.insecure_skip_verify => ("insecure".to_string(), Trust::Insecure),
            None => ("public".to_string(), Trust::PublicRoots),
        };
        let oref = ObjectRef::from_obj(branch);
        if let Some((cached, client)) = lock(&self.clients).get(&oref)
            && *cached == fingerprint
        {
            return Ok(Ok(client.clone()));
        }
        match InstanceClient::new(trust) {
            Ok(client) => {
                lock(&self.clients).insert(oref, (fingerprint, client.clone()));
                Ok(Ok(client))
            }
            Err(e) => Ok(Err(("InvalidCA", format!("CA of Branch {}: {}", branch.name_any(), e.message)))),
        }
    }
}

fn names_organization(branch: &Branch, kind: OrganizationSourceKind, name: &str) -> bool {
    branch.spec.organization_ref.as_ref().is_some_and(|r| r.kind == kind && r.name == name)
}

/// A referenced Secret, or the key in it, is missing.
enum Missing {
    Secret(String),
    Key(String),
}

impl Missing {
    fn message(self) -> String {
        match self {
            Missing::Secret(m) | Missing::Key(m) => m,
        }
    }
}

/// Drops clients, schedules and metrics of Branches that no longer exist.
async fn sweep(bctx: Arc<BranchContext>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let live: HashSet<ObjectRef<Branch>> =
            bctx.branches.state().iter().map(|b| ObjectRef::from_obj(&**b)).collect();
        let gone: Vec<ObjectRef<Branch>> = lock(&bctx.cadence).keys().filter(|o| !live.contains(*o)).cloned().collect();
        for oref in gone {
            lock(&bctx.cadence).remove(&oref);
            lock(&bctx.clients).remove(&oref);
            lock(&bctx.sync_backoff).remove(&oref);
            lock(&bctx.license_checks).remove(&oref);
            let labels = labels_of(&oref);
            bctx.ctx.metrics.branch_up.remove(&labels);
            bctx.ctx.metrics.branch_probe_duration.remove(&labels);
        }
    }
}

fn labels_of(oref: &ObjectRef<Branch>) -> BranchLabels {
    BranchLabels { namespace: oref.namespace.clone().unwrap_or_default(), branch: oref.name.clone() }
}

#[async_trait::async_trait]
impl Reconciler for BranchContext {
    type Object = Branch;
    const KIND: &'static str = "Branch";

    async fn reconcile(&self, branch: Arc<Branch>) -> Result<Action, Error> {
        let oref = ObjectRef::from_obj(&*branch);
        let settings = Settings::of(&branch);
        if let Err(wait) = self.due(&oref, branch.metadata.generation, settings.interval) {
            return Ok(Action::requeue(wait));
        }
        let started = Instant::now();
        apply(&branch, self, &settings).await.map(|next| match next {
            Next::Probe => Action::requeue(settings.interval.saturating_sub(started.elapsed()).max(SLACK)),
            Next::Idle => Action::await_change(),
        })
    }

    /// The next attempt probes at once.
    fn failed(&self, branch: &Branch, _error: &Error) {
        self.forget(&ObjectRef::from_obj(branch));
    }
}

/// What the reconcile that just ran asks for next.
enum Next {
    /// Run again at the probe interval.
    Probe,
    /// Nothing to do until the Branch changes.
    Idle,
}

/// Status changes made by one reconcile, written once at the end.
struct Update<'a> {
    branch: &'a Branch,
    api: Api<Branch>,
    status: BranchStatus,
    generation: Option<i64>,
}

impl Update<'_> {
    fn condition(&mut self, type_: &str, status: Status, reason: &str, message: impl Into<String>) {
        conditions::set(&mut self.status.conditions, type_, status, reason, message, self.generation);
    }

    fn kstatus(&mut self, kstatus: Kstatus, reason: &str, message: &str) {
        self.status.kstatus(self.generation, kstatus, reason, message);
    }

    async fn write(self) -> Result<(), Error> {
        apply_status(&self.api, self.branch, self.branch.status.as_ref(), &self.status, MANAGER).await
    }
}

async fn apply(branch: &Branch, bctx: &BranchContext, settings: &Settings) -> Result<Next, Error> {
    let namespace = branch.namespace().unwrap_or_default();
    let name = branch.name_any();
    let generation = branch.metadata.generation;
    let mut update = Update {
        branch,
        api: Api::namespaced(bctx.ctx.client.clone(), &namespace),
        status: branch.status.clone().unwrap_or_default(),
        generation,
    };
    update.status.observed_generation = generation;
    update.status.grace_rule = Some(health::grace_rule(settings.thresholds, settings.interval));
    if branch.spec.cordoned {
        update.condition(CORDONED, Status::True, "Cordoned", "spec.cordoned is true: no new work is routed here");
    } else {
        update.condition(CORDONED, Status::False, "Schedulable", "");
    }
    let labels = BranchLabels { namespace: namespace.clone(), branch: name.clone() };

    if !branch.spec.accepted {
        let message = "spec.accepted is false: not probed and not registered";
        update.condition(REACHABLE, Status::Unknown, "NotAccepted", message);
        update.kstatus(Kstatus::Failed, "NotAccepted", message);
        bctx.ctx.metrics.branch_up.remove(&labels);
        update.write().await?;
        return Ok(Next::Idle);
    }
    if let Some(message) = settings.invalid.clone() {
        return stall(update, bctx, &labels, "InvalidHealthCheck", message).await;
    }
    let policy = &bctx.ctx.config.branches;
    if let Err(v) = policy.check(&branch.spec.url).and(policy.check_insecure(branch.spec.tls.insecure_skip_verify)) {
        return stall(update, bctx, &labels, v.reason, format!("spec.url: {}; no request is sent", v.message)).await;
    }
    if let Some(path) = registry::parent_loop(&name, |n| bctx.parent_of(&namespace, n)) {
        let message = format!("parent loop: {}; point one of them at a Top branch", path.join(" -> "));
        return stall(update, bctx, &labels, "ParentLoop", message).await;
    }
    let key = match bctx.secret_value(&namespace, &branch.spec.credentials_secret_ref).await? {
        Ok(key) => key,
        Err(Missing::Secret(m)) => return stall(update, bctx, &labels, "CredentialsSecretMissing", m).await,
        Err(Missing::Key(m)) => return stall(update, bctx, &labels, "CredentialsKeyMissing", m).await,
    };
    if !is_bearer_token(&key) {
        let message = format!(
            "Secret {} key {:?} is not a bearer token (printable ASCII without spaces)",
            branch.spec.credentials_secret_ref.name, branch.spec.credentials_secret_ref.key
        );
        return stall(update, bctx, &labels, "CredentialsKeyInvalid", message).await;
    }
    let client = match bctx.client_for(branch).await? {
        Ok(client) => client,
        Err((reason, message)) => return stall(update, bctx, &labels, reason, message).await,
    };

    let parent = registration::parent(bctx, branch).await?;
    let registration = registration::ensure(&mut update, bctx, &client, &parent, &key, settings.timeout).await?;
    let parent = parent.ok().flatten();

    // Probes speak as the overseer, whom the instance's registry now holds: the
    // parent when there is one, else the Branch itself.
    let (origin, origin_key) = registration::overseer(branch, parent.as_ref(), &key);
    let call = Call { base_url: &branch.spec.url, key: origin_key, origin: &origin, timeout: settings.timeout };
    let outcome = client.health(&call, &branch.spec.health_check.path).await;
    if let Err(refused) = &outcome
        && registration::lost(&refused.message)
    {
        // The middleware no longer knows the overseer (a registry reset, a removed
        // entry): register again on the next reconcile instead of trusting the hash.
        update.status.registration_hash = None;
    }
    let now = Timestamp::now();
    let latency = match &outcome {
        Ok(h) => h.latency,
        Err(u) => u.latency,
    };
    bctx.ctx.metrics.branch_probe_duration.get_or_create(&labels).observe(latency.as_secs_f64());

    let status = &mut update.status;
    let previous = reachability(status);
    let streak = Streak {
        failures: status.consecutive_failures.unwrap_or(0).max(0) as u32,
        successes: status.consecutive_successes.unwrap_or(0).max(0) as u32,
    };
    let observed = health::observe(previous, streak, outcome.is_ok(), settings.thresholds);
    status.last_probe_at = Some(Time(now));
    status.consecutive_failures = Some(observed.streak.failures.min(i32::MAX as u32) as i32);
    status.consecutive_successes = Some(observed.streak.successes.min(i32::MAX as u32) as i32);
    if let Ok(healthy) = &outcome {
        status.last_success_at = Some(Time(now));
        status.latency_ms = Some(healthy.latency.as_millis().min(i64::MAX as u128) as i64);
        if healthy.version.is_some() {
            status.remote_version = healthy.version.clone();
        }
    }
    let (reason, message) = reachable_message(&observed, outcome.as_ref().err().map(|u| u.message.as_str()), settings);
    let reachable_status = match observed.reachability {
        Reachability::Reachable => Status::True,
        Reachability::Unreachable => Status::False,
        Reachability::Unknown => Status::Unknown,
    };
    update.condition(REACHABLE, reachable_status, reason, message.clone());
    match observed.reachability {
        Reachability::Reachable => {
            bctx.ctx.metrics.branch_up.get_or_create(&labels).set(1);
        }
        Reachability::Unreachable => {
            bctx.ctx.metrics.branch_up.get_or_create(&labels).set(0);
        }
        Reachability::Unknown => {
            bctx.ctx.metrics.branch_up.remove(&labels);
        }
    }
    if registration == RegistrationState::Registered {
        let org = organization::load(bctx, parent.as_ref()).await?;
        organization::sync(&mut update, bctx, &client, parent.as_ref(), org.as_ref(), settings.timeout).await;
        organization::check_license(&mut update, bctx, parent.as_ref(), org.as_ref(), &key, settings.timeout).await;
    }
    let ready = health::readiness(observed.reachability, &registration, branch.spec.cordoned);
    let kstatus = match (ready.ready, ready.reconciling) {
        (true, _) => Kstatus::Ready,
        (false, true) => Kstatus::Progressing,
        (false, false) => Kstatus::Failed,
    };
    update.kstatus(kstatus, &ready.reason, &ready.message);
    update.write().await?;

    match observed.transition {
        Some((_, Reachability::Reachable)) => {
            publish(&bctx.ctx, branch, EventType::Normal, "Reachable", "Probe", message).await;
        }
        Some((_, Reachability::Unreachable)) => {
            publish(&bctx.ctx, branch, EventType::Warning, "Unreachable", "Probe", message).await;
        }
        _ => {}
    }
    Ok(Next::Probe)
}

/// The state the Reachable condition records.
fn reachability(status: &BranchStatus) -> Reachability {
    match conditions::get(&status.conditions, REACHABLE).map(|c| c.status.as_str()) {
        Some("True") => Reachability::Reachable,
        Some("False") => Reachability::Unreachable,
        _ => Reachability::Unknown,
    }
}

/// Reason and message of the Reachable condition after a probe: what the last probe
/// did and how far the streak is from changing anything.
fn reachable_message(observed: &health::Observed, error: Option<&str>, settings: &Settings) -> (&'static str, String) {
    let t = settings.thresholds;
    let streak = observed.streak;
    match (error, observed.reachability) {
        (None, Reachability::Reachable) => ("ProbeSucceeded", "the last health probe succeeded".into()),
        (None, _) => (
            "ProbeSucceeded",
            format!("{} of {} successful probes in a row needed to turn Reachable", streak.successes, t.success),
        ),
        (Some(error), Reachability::Unreachable) => {
            ("ProbeFailed", format!("{} failed probes in a row; last: {error}", streak.failures))
        }
        (Some(error), _) => (
            "ProbeFailed",
            format!("{} of {} failed probes in a row to turn Unreachable; last: {error}", streak.failures, t.failure),
        ),
    }
}

/// The Branch cannot progress until the user changes it or a Secret it names:
/// `Stalled=True` (its reachability unknown: it is not probed), a Warning Event the
/// first time. Retried at the probe interval and whenever a referenced Secret changes.
async fn stall(
    update: Update<'_>,
    bctx: &BranchContext,
    labels: &BranchLabels,
    reason: &str,
    message: String,
) -> Result<Next, Error> {
    bctx.ctx.metrics.branch_up.remove(labels);
    let branch = update.branch;
    kit::stall(&bctx.ctx, &update.api, branch, branch.status.as_ref(), update.status, MANAGER, reason, message).await?;
    Ok(Next::Probe)
}
