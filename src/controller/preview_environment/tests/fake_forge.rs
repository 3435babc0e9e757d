//! An in-memory Forge: one server ([`SERVER`]), objects kept behind a `Mutex`,
//! every call recorded (method name + key arguments) so tests can assert on what
//! was and was not asked.
//!
//! Semantics follow Forge (and `forge/api.rs`): unknown ids are 404 (also for a
//! nested object asked under the wrong site or domain); `filter[name]` /
//! `filter[command]` match *partially* (callers must compare exactly); lists are
//! filtered by site id where the route is per site; creating a name that exists is
//! a 422 "has already been taken"; deployments are listed newest first and ids
//! only grow. Deleting a site deletes what lives on it (workers, domains,
//! certificates, deployments, commands, `.env`), not its databases.
//!
//! Deletes: by default the object vanishes at once (later reads are 404). With
//! [`Knobs::deletes_linger`] it turns `removing` (`deleting` for certificates) and
//! stays listed until [`FakeForge::finish_removals`] — "Forge still removing".
//!
//! New objects start in the status the [`Knobs`] say ("installs instantly" by
//! default); `set_*` helpers change them later. The `ForgeApi` impl is in
//! `forge_api.rs`; scheduled jobs, which no step uses, answer 404.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::World;
use crate::forge::*;

/// The one Forge server of the fake.
pub const SERVER: u64 = 1;

/// The status new objects get.
#[derive(Clone, Debug)]
pub struct Knobs {
    pub site_status: &'static str,
    pub database_status: &'static str,
    pub user_status: &'static str,
    pub worker_status: &'static str,
    /// `installed` (and active), `installing`, or `failed`.
    pub certificate_status: &'static str,
    /// `finished`, `queued`, `deploying` or `failed`.
    pub deployment_status: &'static str,
    pub command_status: &'static str,
    /// Deletes leave the object `removing` until [`FakeForge::finish_removals`].
    pub deletes_linger: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            site_status: "installed",
            database_status: "installed",
            user_status: "installed",
            worker_status: "installed",
            certificate_status: "installed",
            deployment_status: "finished",
            command_status: "finished",
            deletes_linger: false,
        }
    }
}

/// One recorded call: `seq` orders it against the FakeCluster's writes.
#[derive(Clone, Debug)]
pub struct Call {
    pub seq: usize,
    pub method: &'static str,
    pub args: String,
}

pub(super) struct Fault {
    method: &'static str,
    error: ForgeError,
    times: usize,
    after_processing: bool,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) next_id: u64,
    pub(super) knobs: Knobs,
    pub(super) sites: BTreeMap<u64, Site>,
    pub(super) databases: BTreeMap<u64, Database>,
    pub(super) users: BTreeMap<u64, (DatabaseUser, Vec<u64>)>,
    /// id -> (site id, process)
    pub(super) processes: BTreeMap<u64, (Option<u64>, BackgroundProcess)>,
    /// id -> (site id, domain)
    pub(super) domains: BTreeMap<u64, (u64, DomainRecord)>,
    /// id -> (site id, domain id, certificate)
    pub(super) certificates: BTreeMap<u64, (u64, u64, Certificate)>,
    pub(super) deployments: BTreeMap<u64, (u64, Deployment)>,
    pub(super) commands: BTreeMap<u64, (u64, SiteCommand)>,
    pub(super) environments: BTreeMap<u64, String>,
    pub(super) scripts: BTreeMap<u64, String>,
    pub(super) calls: Vec<Call>,
    pub(super) faults: Vec<Fault>,
}

pub(super) fn not_found(what: impl std::fmt::Display) -> ForgeError {
    ForgeError::NotFound { message: format!("{what} not found") }
}

pub(super) fn taken(field: &str) -> ForgeError {
    let message = format!("The {field} has already been taken.");
    ForgeError::Validation { message: message.clone(), errors: [(field.to_string(), vec![message])].into() }
}

pub(super) fn check_server(server: u64) -> ForgeResult<()> {
    if server == SERVER { Ok(()) } else { Err(not_found(format!("server {server}"))) }
}

pub(super) fn matches(name: &str, filter: Option<&str>) -> bool {
    filter.is_none_or(|f| name.contains(f))
}

impl State {
    pub(super) fn id(&mut self) -> u64 {
        self.next_id += 1;
        100 + self.next_id
    }

    pub(super) fn site(&self, server: u64, site: u64) -> ForgeResult<&Site> {
        check_server(server)?;
        self.sites.get(&site).ok_or_else(|| not_found(format!("site {site}")))
    }

    fn fault(&mut self, method: &str, after_processing: bool) -> Option<ForgeError> {
        let i = self.faults.iter().position(|f| f.method == method && f.after_processing == after_processing)?;
        let error = self.faults[i].error.clone();
        self.faults[i].times -= 1;
        if self.faults[i].times == 0 {
            self.faults.remove(i);
        }
        Some(error)
    }

    /// A site and everything that lives on it (not its databases).
    pub(super) fn drop_site(&mut self, id: u64) {
        self.sites.remove(&id);
        self.processes.retain(|_, (site, _)| *site != Some(id));
        self.domains.retain(|_, (site, _)| *site != id);
        self.certificates.retain(|_, (site, _, _)| *site != id);
        self.deployments.retain(|_, (site, _)| *site != id);
        self.commands.retain(|_, (site, _)| *site != id);
        self.environments.remove(&id);
        self.scripts.remove(&id);
    }
}

/// The in-memory Forge. Share it as `Arc<FakeForge>` (it is the `Inputs::forge`).
pub struct FakeForge {
    world: Arc<World>,
    state: Mutex<State>,
}

impl FakeForge {
    pub fn new(world: Arc<World>) -> Self {
        Self { world, state: Mutex::new(State::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the call, applies faults and the crash point, runs `f` on the state.
    pub(super) fn call<T>(
        &self,
        method: &'static str,
        args: String,
        f: impl FnOnce(&mut State) -> ForgeResult<T>,
    ) -> ForgeResult<T> {
        if self.world.crashed() {
            return Err(ForgeError::Transport { kind: TransportKind::Connect, message: "operator crashed".into() });
        }
        let mut s = self.lock();
        let seq = self.world.tick();
        s.calls.push(Call { seq, method, args });
        if let Some(e) = s.fault(method, false) {
            return Err(e);
        }
        let out = f(&mut s)?;
        if let Some(e) = s.fault(method, true) {
            return Err(e);
        }
        drop(s);
        self.world.after(method);
        Ok(out)
    }

    // ---- knobs and faults ----

    pub fn knobs(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.lock().knobs);
    }

    /// The next call of `method` fails with `error` before Forge processes it.
    pub fn fail(&self, method: &'static str, error: ForgeError) {
        self.lock().faults.push(Fault { method, error, times: 1, after_processing: false });
    }

    /// The next `times` calls of `method` fail with `error`.
    pub fn fail_times(&self, method: &'static str, error: ForgeError, times: usize) {
        self.lock().faults.push(Fault { method, error, times, after_processing: false });
    }

    /// The next call of `method` is processed, then answers `error` (a lost answer).
    pub fn fail_after_processing(&self, method: &'static str, error: ForgeError) {
        self.lock().faults.push(Fault { method, error, times: 1, after_processing: true });
    }

    // ---- the call log ----

    pub fn methods(&self) -> Vec<&'static str> {
        self.lock().calls.iter().map(|c| c.method).collect()
    }

    pub fn count(&self, method: &str) -> usize {
        self.lock().calls.iter().filter(|c| c.method == method).count()
    }

    /// Arguments of every call of `method`, in order.
    pub fn args_of(&self, method: &str) -> Vec<String> {
        self.lock().calls.iter().filter(|c| c.method == method).map(|c| c.args.clone()).collect()
    }

    /// Sequence number of the first call of `method`.
    pub fn first_seq(&self, method: &str) -> Option<usize> {
        self.lock().calls.iter().find(|c| c.method == method).map(|c| c.seq)
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    // ---- the world, arranged and inspected out of band (never recorded) ----

    pub fn add_site(&self, name: &str, tags: &[&str], status: &str) -> u64 {
        let mut s = self.lock();
        let id = s.id();
        let site = Site {
            id,
            server_id: Some(SERVER),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            name: name.into(),
            status: status.into(),
            root_directory: Some(format!("/home/forge/{name}")),
            php_version: Some("php84".into()),
            ..Default::default()
        };
        s.sites.insert(id, site);
        id
    }

    pub fn sites(&self) -> Vec<Site> {
        self.lock().sites.values().cloned().collect()
    }

    pub fn site(&self, id: u64) -> Option<Site> {
        self.lock().sites.get(&id).cloned()
    }

    pub fn set_site(&self, id: u64, f: impl FnOnce(&mut Site)) {
        f(self.lock().sites.get_mut(&id).expect("no such site"));
    }

    /// Deleted out of band, with what lives on it.
    pub fn remove_site(&self, id: u64) {
        self.lock().drop_site(id);
    }

    pub fn add_database(&self, name: &str, status: &str) -> u64 {
        let mut s = self.lock();
        let id = s.id();
        s.databases.insert(id, Database { id, name: name.into(), status: status.into() });
        id
    }

    pub fn databases(&self) -> Vec<Database> {
        self.lock().databases.values().cloned().collect()
    }

    pub fn set_databases_status(&self, status: &str) {
        self.lock().databases.values_mut().for_each(|d| d.status = status.into());
    }

    pub fn remove_database(&self, id: u64) {
        self.lock().databases.remove(&id);
    }

    pub fn add_database_user(&self, name: &str, status: &str) -> u64 {
        let mut s = self.lock();
        let id = s.id();
        s.users.insert(id, (DatabaseUser { id, name: name.into(), status: status.into() }, Vec::new()));
        id
    }

    pub fn database_users(&self) -> Vec<DatabaseUser> {
        self.lock().users.values().map(|(u, _)| u.clone()).collect()
    }

    pub fn set_database_users_status(&self, status: &str) {
        self.lock().users.values_mut().for_each(|(u, _)| u.status = status.into());
    }

    /// Background processes of `site`.
    pub fn workers(&self, site: u64) -> Vec<BackgroundProcess> {
        self.lock().processes.values().filter(|(s, _)| *s == Some(site)).map(|(_, p)| p.clone()).collect()
    }

    pub fn add_worker(&self, site: u64, command: &str, status: &str) -> u64 {
        let mut s = self.lock();
        let id = s.id();
        let process = BackgroundProcess {
            id,
            command: command.into(),
            user: "forge".into(),
            directory: Some("/home/forge".into()),
            processes: 1,
            status: status.into(),
        };
        s.processes.insert(id, (Some(site), process));
        id
    }

    pub fn set_workers_status(&self, status: &str) {
        self.lock().processes.values_mut().for_each(|(_, p)| p.status = status.into());
    }

    pub fn remove_worker(&self, id: u64) {
        self.lock().processes.remove(&id);
    }

    pub fn domains(&self, site: u64) -> Vec<DomainRecord> {
        self.lock().domains.values().filter(|(s, _)| *s == site).map(|(_, d)| d.clone()).collect()
    }

    pub fn certificates(&self) -> Vec<Certificate> {
        self.lock().certificates.values().map(|(_, _, c)| c.clone()).collect()
    }

    /// Every certificate now has `status` (`installed` makes it active).
    pub fn set_certificates_status(&self, status: &str) {
        for (_, _, c) in self.lock().certificates.values_mut() {
            c.status = status.into();
            c.active = status == "installed";
        }
    }

    pub fn deployments(&self, site: u64) -> Vec<Deployment> {
        self.lock().deployments.values().filter(|(s, _)| *s == site).map(|(_, d)| d.clone()).collect()
    }

    pub fn set_deployments_status(&self, status: &str) {
        self.lock().deployments.values_mut().for_each(|(_, d)| d.status = status.into());
    }

    pub fn environment(&self, site: u64) -> Option<String> {
        self.lock().environments.get(&site).cloned()
    }

    pub fn set_environment(&self, site: u64, content: &str) {
        self.lock().environments.insert(site, content.into());
    }

    pub fn commands(&self, site: u64) -> Vec<SiteCommand> {
        self.lock().commands.values().filter(|(s, _)| *s == site).map(|(_, c)| c.clone()).collect()
    }

    /// Forge finishes every pending removal: `removing`/`deleting` objects vanish.
    pub fn finish_removals(&self) {
        let mut s = self.lock();
        let sites: Vec<u64> = s.sites.values().filter(|x| x.status == "removing").map(|x| x.id).collect();
        for id in sites {
            s.drop_site(id);
        }
        s.databases.retain(|_, d| d.status != "removing");
        s.users.retain(|_, (u, _)| u.status != "removing");
        s.processes.retain(|_, (_, p)| p.status != "removing");
        s.domains.retain(|_, (_, d)| d.status != "removing");
        s.certificates.retain(|_, (_, _, c)| c.status != "deleting");
    }
}
