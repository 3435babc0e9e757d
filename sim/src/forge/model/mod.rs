//! The simulator's world: records as Forge stores them and the operations on them.
//! Everything here is synchronous and takes `now` explicitly; the HTTP layer
//! holds the lock, calls one operation and renders the result.
//!
//! This file holds the [`World`] itself, its organization, the errors operations return
//! and the lookups that enforce nesting; each entity's record and operations live in a
//! submodule of their own, re-exported here so `model::Site` etc. keep their paths.

mod background_processes;
mod certificates;
mod commands;
mod databases;
mod deployments;
mod domains;
mod scheduled_jobs;
mod servers;
mod sites;

pub use background_processes::BackgroundProcess;
pub use certificates::Certificate;
pub use commands::SiteCommand;
pub use databases::{Database, DatabaseUser};
pub use deployments::Deployment;
pub use domains::Domain;
pub use scheduled_jobs::{ScheduledJob, frequency_cron};
pub use servers::{Server, Tag};
pub use sites::{Repository, Site};

use super::lifecycle::is_gone;
use super::validation::{FieldErrors, Input};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use servers::{default_db_type, default_php, default_tz};
use std::collections::BTreeMap;
use std::time::Duration;

/// Why an operation did not happen; the HTTP layer turns it into a Laravel error body.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    NotFound(String),
    Forbidden(String),
    Validation(FieldErrors),
    BadRequest(String),
    Server(String),
}

impl ApiError {
    fn missing(model: &str, id: u64) -> Self {
        ApiError::NotFound(format!("No query results for model [App\\Models\\{model}] {id}"))
    }
}

pub type OpResult<T> = Result<T, ApiError>;

fn validated(input: Input<'_>) -> OpResult<()> {
    input.finish().map_err(ApiError::Validation)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Organization {
    pub id: u64,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
}

/// The whole simulated account. Serialized as-is into the state file and `/_sim/state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    pub next_id: u64,
    pub user_id: u64,
    pub organizations: BTreeMap<u64, Organization>,
    pub servers: BTreeMap<u64, Server>,
    #[serde(default)]
    pub tags: BTreeMap<u64, Tag>,
    #[serde(default)]
    pub sites: BTreeMap<u64, Site>,
    #[serde(default)]
    pub deployments: BTreeMap<u64, Deployment>,
    #[serde(default)]
    pub domains: BTreeMap<u64, Domain>,
    #[serde(default)]
    pub certificates: BTreeMap<u64, Certificate>,
    #[serde(default)]
    pub databases: BTreeMap<u64, Database>,
    #[serde(default)]
    pub database_users: BTreeMap<u64, DatabaseUser>,
    #[serde(default)]
    pub background_processes: BTreeMap<u64, BackgroundProcess>,
    #[serde(default)]
    pub scheduled_jobs: BTreeMap<u64, ScheduledJob>,
    #[serde(default)]
    pub commands: BTreeMap<u64, SiteCommand>,
}

impl World {
    /// One organization `org` with one server (id 1), as a fresh Forge account would look.
    pub fn new(org: &str, now: DateTime<Utc>) -> Self {
        let mut w = World {
            next_id: 2,
            user_id: 1,
            organizations: BTreeMap::new(),
            servers: BTreeMap::new(),
            tags: BTreeMap::new(),
            sites: BTreeMap::new(),
            deployments: BTreeMap::new(),
            domains: BTreeMap::new(),
            certificates: BTreeMap::new(),
            databases: BTreeMap::new(),
            database_users: BTreeMap::new(),
            background_processes: BTreeMap::new(),
            scheduled_jobs: BTreeMap::new(),
            commands: BTreeMap::new(),
        };
        w.organizations
            .insert(1, Organization { id: 1, name: org.to_string(), slug: org.to_string(), created_at: now });
        w.servers.insert(
            1,
            Server {
                id: 1,
                organization: org.to_string(),
                name: "switchyard-demo".into(),
                ip_address: "127.0.0.1".into(),
                private_ip_address: Some("10.0.0.1".into()),
                php_version: default_php(),
                database_type: default_db_type(),
                timezone: default_tz(),
                tags: vec![],
                created_at: now,
                updated_at: now,
            },
        );
        w
    }

    fn alloc(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Drops every record whose deletion has completed (`removing → gone`).
    pub fn settle(&mut self, now: DateTime<Utc>, delay: Duration) -> bool {
        let before = self.record_count();
        let gone_sites: Vec<u64> =
            self.sites.values().filter(|s| is_gone(s.deleted_at, now, delay)).map(|s| s.id).collect();
        for id in &gone_sites {
            self.sites.remove(id);
        }
        let site_alive = |sites: &BTreeMap<u64, Site>, id: u64| sites.contains_key(&id);
        self.deployments.retain(|_, d| site_alive(&self.sites, d.site_id));
        self.commands.retain(|_, c| site_alive(&self.sites, c.site_id));
        self.domains.retain(|_, d| site_alive(&self.sites, d.site_id) && !is_gone(d.deleted_at, now, delay));
        let domains = &self.domains;
        self.certificates.retain(|_, c| domains.contains_key(&c.domain_id) && !is_gone(c.deleted_at, now, delay));
        self.databases.retain(|_, d| !is_gone(d.deleted_at, now, delay));
        self.database_users.retain(|_, u| !is_gone(u.deleted_at, now, delay));
        self.background_processes.retain(|_, p| !is_gone(p.deleted_at, now, delay));
        self.scheduled_jobs.retain(|_, j| !is_gone(j.deleted_at, now, delay));
        before != self.record_count()
    }

    fn record_count(&self) -> usize {
        self.sites.len()
            + self.deployments.len()
            + self.commands.len()
            + self.domains.len()
            + self.certificates.len()
            + self.databases.len()
            + self.database_users.len()
            + self.background_processes.len()
            + self.scheduled_jobs.len()
    }

    // ---- lookups that enforce nesting (a wrong org/server/site is a 404) ----

    pub fn org(&self, slug: &str) -> OpResult<&Organization> {
        self.organizations
            .values()
            .find(|o| o.slug == slug)
            .ok_or_else(|| ApiError::NotFound("No query results for model [App\\Models\\Organization].".into()))
    }

    pub fn server(&self, org: &str, server_id: u64) -> OpResult<&Server> {
        self.org(org)?;
        self.servers
            .get(&server_id)
            .filter(|s| s.organization == org)
            .ok_or_else(|| ApiError::missing("Server", server_id))
    }

    /// A site in `org` (and on `server_id` when given). Sites being removed still resolve.
    pub fn site(&self, org: &str, server_id: Option<u64>, site_id: u64) -> OpResult<&Site> {
        let site = self.sites.get(&site_id).ok_or_else(|| ApiError::missing("Site", site_id))?;
        let server = match server_id {
            Some(s) if s != site.server_id => return Err(ApiError::missing("Site", site_id)),
            _ => self.server(org, site.server_id).map_err(|_| ApiError::missing("Site", site_id))?,
        };
        debug_assert_eq!(server.id, site.server_id);
        Ok(site)
    }

    fn site_mut(&mut self, org: &str, server_id: u64, site_id: u64) -> OpResult<&mut Site> {
        self.site(org, Some(server_id), site_id)?;
        self.sites.get_mut(&site_id).ok_or_else(|| ApiError::missing("Site", site_id))
    }

    pub fn sites_in_org<'a>(&'a self, org: &'a str) -> impl Iterator<Item = &'a Site> + 'a {
        self.sites.values().filter(move |s| self.servers.get(&s.server_id).is_some_and(|srv| srv.organization == org))
    }

    fn tag_id(&mut self, name: &str, now: DateTime<Utc>) -> u64 {
        if let Some(t) = self.tags.values().find(|t| t.name == name) {
            return t.id;
        }
        let id = self.alloc();
        self.tags.insert(id, Tag { id, name: name.to_string(), created_at: now });
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    const D: Duration = Duration::from_millis(100);

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn site_body(name: &str) -> Map<String, Value> {
        obj(json!({"type": "laravel", "domain_mode": "on-forge", "name": name}))
    }

    fn validation(err: ApiError) -> FieldErrors {
        match err {
            ApiError::Validation(e) => e,
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn duplicate_database_name_is_a_validation_error() {
        let mut w = World::new("demo", now());
        w.create_database("demo", 1, &obj(json!({"name": "app"})), now()).unwrap();
        let errs = validation(w.create_database("demo", 1, &obj(json!({"name": "app"})), now()).unwrap_err());
        assert_eq!(errs["name"], vec!["The name has already been taken."]);
    }

    #[test]
    fn database_and_user_names_are_capped() {
        let mut w = World::new("demo", now());
        let errs = validation(w.create_database("demo", 1, &obj(json!({"name": "d".repeat(64)})), now()).unwrap_err());
        assert!(errs.contains_key("name"));
        let errs = validation(
            w.create_database_user("demo", 1, &obj(json!({"name": "u".repeat(33), "password": "x"})), now())
                .unwrap_err(),
        );
        assert!(errs.contains_key("name"));
        assert!(w.create_database("demo", 1, &obj(json!({"name": "d".repeat(63)})), now()).is_ok());
        assert!(
            w.create_database_user("demo", 1, &obj(json!({"name": "u".repeat(32), "password": "x"})), now()).is_ok()
        );
    }

    #[test]
    fn required_fields_are_named_in_errors() {
        let mut w = World::new("demo", now());
        let errs = validation(w.create_site("demo", 1, &obj(json!({})), now()).unwrap_err());
        for field in ["type", "domain_mode", "name"] {
            assert!(errs.contains_key(field), "{field} missing from {errs:?}");
        }
        let errs = validation(w.create_database_user("demo", 1, &obj(json!({"name": "x"})), now()).unwrap_err());
        assert_eq!(errs["password"], vec!["The password field is required."]);
    }

    #[test]
    fn reserved_isolated_user_is_rejected() {
        let mut w = World::new("demo", now());
        let mut body = site_body("pr-1");
        body.insert("is_isolated".into(), json!(true));
        body.insert("isolated_user".into(), json!("forge"));
        let errs = validation(w.create_site("demo", 1, &body, now()).unwrap_err());
        assert!(errs.contains_key("isolated_user"));
    }

    #[test]
    fn deleting_a_site_removes_workers_and_jobs_but_keeps_database() {
        let mut w = World::new("demo", now());
        let (db, user) = w
            .create_database("demo", 1, &obj(json!({"name": "pr_1", "user": "pr_1", "password": "pw"})), now())
            .unwrap();
        let site = w.create_site("demo", 1, &site_body("pr-1"), now()).unwrap();
        let worker = w
            .create_background_process("demo", 1, &obj(json!({"name": "w", "command": "php artisan queue:work", "user": "forge", "processes": 1, "site_id": site})), now())
            .unwrap();
        let other = w
            .create_background_process(
                "demo",
                1,
                &obj(json!({"name": "x", "command": "x", "user": "root", "processes": 1})),
                now(),
            )
            .unwrap();
        let job = w
            .create_job(
                "demo",
                1,
                Some(site),
                &obj(json!({"command": "php artisan schedule:run", "user": "forge", "frequency": "minutely"})),
                now(),
            )
            .unwrap();
        w.delete_site("demo", 1, site, now()).unwrap();
        let later = now() + chrono::Duration::milliseconds(150);
        w.settle(later, D);
        assert!(!w.sites.contains_key(&site));
        assert!(!w.background_processes.contains_key(&worker));
        assert!(!w.scheduled_jobs.contains_key(&job));
        assert!(w.background_processes.contains_key(&other));
        assert!(w.databases.contains_key(&db));
        assert!(w.database_users.contains_key(&user.unwrap()));
    }

    #[test]
    fn nesting_is_enforced() {
        let mut w = World::new("demo", now());
        let site = w.create_site("demo", 1, &site_body("pr-2"), now()).unwrap();
        assert!(matches!(w.site("other", None, site), Err(ApiError::NotFound(_))));
        assert!(matches!(w.site("demo", Some(99), site), Err(ApiError::NotFound(_))));
        let db = w.create_database("demo", 1, &obj(json!({"name": "n"})), now()).unwrap().0;
        assert!(matches!(w.site("demo", None, db), Err(ApiError::NotFound(_))));
    }

    #[test]
    fn duplicate_site_name_on_a_server_is_rejected() {
        let mut w = World::new("demo", now());
        w.create_site("demo", 1, &site_body("pr-3"), now()).unwrap();
        let errs = validation(w.create_site("demo", 1, &site_body("pr-3"), now()).unwrap_err());
        assert_eq!(errs["name"], vec!["The name has already been taken."]);
    }
}
