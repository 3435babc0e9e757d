//! The simulator's world: records as Forge stores them and the operations on them.
//! Everything here is synchronous and takes `now` explicitly; the HTTP layer
//! holds the lock, calls one operation and renders the result.

use super::lifecycle::{self, is_gone};
use super::validation::{self as v, FieldErrors, Input};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Server {
    pub id: u64,
    pub organization: String,
    pub name: String,
    pub ip_address: String,
    #[serde(default)]
    pub private_ip_address: Option<String>,
    #[serde(default = "default_php")]
    pub php_version: String,
    #[serde(default = "default_db_type")]
    pub database_type: String,
    #[serde(default = "default_tz")]
    pub timezone: String,
    #[serde(default)]
    pub tags: Vec<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn default_php() -> String {
    "php84".into()
}
fn default_db_type() -> String {
    "mariadb1011".into()
}
fn default_tz() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tag {
    pub id: u64,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Repository {
    pub provider: Option<String>,
    pub url: String,
    pub branch: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Site {
    pub id: u64,
    pub server_id: u64,
    pub name: String,
    pub site_type: String,
    pub domain_mode: String,
    pub php_version: Option<String>,
    pub isolated: bool,
    pub user: String,
    pub root_directory: String,
    pub web_directory: String,
    pub repository: Option<Repository>,
    pub quick_deploy: bool,
    pub zero_downtime_deployments: bool,
    pub deployment_retention: Option<i64>,
    pub www_redirect_type: Option<String>,
    pub wildcards: bool,
    pub database_id: Option<u64>,
    pub tags: Vec<u64>,
    pub environment: String,
    pub deployment_script: Option<String>,
    pub auto_source: bool,
    pub deploy_hook_token: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    pub id: u64,
    pub site_id: u64,
    pub commit_hash: Option<String>,
    pub commit_author: Option<String>,
    pub commit_message: Option<String>,
    pub branch: Option<String>,
    pub kind: String,
    pub fails: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Domain {
    pub id: u64,
    pub site_id: u64,
    pub name: String,
    pub primary: bool,
    pub www_redirect_type: String,
    pub allow_wildcard_subdomains: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Certificate {
    pub id: u64,
    pub site_id: u64,
    pub domain_id: u64,
    pub cert_type: String,
    pub verification_method: Option<String>,
    pub key_type: Option<String>,
    pub preferred_chain: Option<String>,
    pub fails: bool,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Database {
    pub id: u64,
    pub server_id: u64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseUser {
    pub id: u64,
    pub server_id: u64,
    pub name: String,
    /// Grants (stored, never echoed: the API does not return them).
    pub database_ids: Vec<u64>,
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackgroundProcess {
    pub id: u64,
    pub server_id: u64,
    pub name: String,
    pub command: String,
    pub user: String,
    pub directory: Option<String>,
    pub processes: i64,
    pub site_id: Option<u64>,
    pub startsecs: Option<i64>,
    pub stopwaitsecs: Option<i64>,
    pub stopsignal: Option<String>,
    pub config: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduledJob {
    pub id: u64,
    pub server_id: u64,
    pub site_id: Option<u64>,
    pub name: Option<String>,
    pub command: String,
    pub user: String,
    pub frequency: String,
    pub cron: String,
    pub heartbeat: Option<bool>,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteCommand {
    pub id: u64,
    pub site_id: u64,
    pub command: String,
    pub user_id: u64,
    pub fails: bool,
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

/// Outcome of a site deletion the MariaDB side does not care about, but tests do.
pub fn frequency_cron(frequency: &str) -> &'static str {
    match frequency {
        "minutely" => "* * * * *",
        "hourly" => "0 * * * *",
        "nightly" => "0 0 * * *",
        "weekly" => "0 0 * * 0",
        "monthly" => "0 0 1 * *",
        "reboot" => "@reboot",
        _ => "",
    }
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

    // ---- servers ----

    pub fn update_server(
        &mut self,
        org: &str,
        server_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.server(org, server_id)?;
        let mut input = Input::new(body);
        let name = input.string_max("name", false, 255);
        let ip = input.string("ip_address", false);
        let private_ip = input.string("private_ip_address", false);
        let timezone = input.string("timezone", false);
        let tags = input.string_list("tags");
        validated(input)?;
        let tag_ids = tags.map(|t| t.iter().map(|n| self.tag_id(n, now)).collect::<Vec<_>>());
        let server = self.servers.get_mut(&server_id).ok_or_else(|| ApiError::missing("Server", server_id))?;
        if let Some(n) = name {
            server.name = n;
        }
        if let Some(ip) = ip {
            server.ip_address = ip;
        }
        if private_ip.is_some() {
            server.private_ip_address = private_ip;
        }
        if let Some(tz) = timezone {
            server.timezone = tz;
        }
        if let Some(ids) = tag_ids {
            server.tags = ids;
        }
        server.updated_at = now;
        Ok(())
    }

    // ---- sites ----

    pub fn create_site(
        &mut self,
        org: &str,
        server_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        self.server(org, server_id)?;
        let mut input = Input::new(body);
        let site_type = input.one_of("type", true, v::SITE_TYPES);
        let domain_mode = input.one_of("domain_mode", true, v::DOMAIN_MODES);
        let name = input.string_max("name", true, 253);
        let mut www_redirect_type = None;
        let mut wildcards = None;
        if domain_mode.as_deref() == Some("custom") {
            www_redirect_type = input.one_of("www_redirect_type", true, v::WWW_REDIRECT_TYPES);
            wildcards = input.boolean("allow_wildcard_subdomains", true);
        } else {
            www_redirect_type = www_redirect_type.or(input.one_of("www_redirect_type", false, v::WWW_REDIRECT_TYPES));
            wildcards = wildcards.or(input.boolean("allow_wildcard_subdomains", false));
        }
        if let (Some(n), Some("on-forge")) = (&name, domain_mode.as_deref()) {
            let label_ok =
                !n.contains('.') && !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !label_ok {
                input.error("name", "The name field must be a single subdomain label.");
            }
        }
        if let (Some(n), Some("custom")) = (&name, domain_mode.as_deref())
            && (n.contains(char::is_whitespace) || !n.contains('.'))
        {
            input.error("name", "The name field must be a valid domain.");
        }
        let is_isolated = input.boolean("is_isolated", false).unwrap_or(false);
        let isolated_user = input.string("isolated_user", is_isolated);
        if let Some(u) = &isolated_user {
            v::check_isolated_user(&mut input, "isolated_user", u);
        }
        let root_directory = input.string("root_directory", false);
        let web_directory = input.string("web_directory", false);
        for (field, value) in [("root_directory", &root_directory), ("web_directory", &web_directory)] {
            if value.as_deref().is_some_and(|d| d.contains(char::is_whitespace)) {
                input.error(field, format!("The {} field format is invalid.", field.replace('_', " ")));
            }
        }
        let php_version = input.one_of("php_version", false, v::PHP_VERSIONS);
        let zero_downtime = input.boolean("zero_downtime_deployments", false).unwrap_or(false);
        let provider = input.one_of("source_control_provider", false, v::SOURCE_CONTROL_PROVIDERS);
        let repository = input.string("repository", false);
        let branch = input.string("branch", false);
        let database_id = input.integer("database_id", false, 1).map(|i| i as u64);
        input.integer("database_user_id", false, 1);
        let push_to_deploy = input.boolean("push_to_deploy", false).unwrap_or(false);
        let tags = input.string_list("tags").unwrap_or_default();
        if let Some(db) = database_id
            && self.databases.get(&db).is_none_or(|d| d.server_id != server_id)
        {
            input.error("database_id", "The selected database id is invalid.");
        }
        if let Some(n) = &name
            && !input.has_error("name")
            && self.sites.values().any(|s| s.server_id == server_id && &s.name == n)
        {
            v::taken(&mut input, "name");
        }
        validated(input)?;
        let name = name.unwrap_or_default();
        let domain_mode = domain_mode.unwrap_or_default();
        let user = if is_isolated { isolated_user.unwrap_or_default() } else { "forge".to_string() };
        let root = root_directory.unwrap_or_else(|| format!("/home/{user}/{name}"));
        let root =
            if root.starts_with('/') { root } else { format!("/home/{user}/{name}/{}", root.trim_start_matches('/')) };
        let web = web_directory.unwrap_or_else(|| "/public".into());
        let web = if web.starts_with(&root) {
            web
        } else {
            format!("{root}/{}", web.trim_start_matches('/')).trim_end_matches('/').to_string()
        };
        let tag_ids = tags.iter().map(|t| self.tag_id(t, now)).collect();
        let id = self.alloc();
        let hook = format!("{:x}", id * 7_919 + 104_729);
        self.sites.insert(
            id,
            Site {
                id,
                server_id,
                name: name.clone(),
                site_type: site_type.unwrap_or_default(),
                domain_mode: domain_mode.clone(),
                php_version: php_version.or_else(|| self.servers.get(&server_id).map(|s| s.php_version.clone())),
                isolated: is_isolated,
                user,
                root_directory: root,
                web_directory: web,
                repository: repository.map(|url| Repository {
                    provider: provider.or(Some("github".into())),
                    url,
                    branch,
                }),
                quick_deploy: push_to_deploy,
                zero_downtime_deployments: zero_downtime,
                deployment_retention: None,
                www_redirect_type: www_redirect_type.clone(),
                wildcards: wildcards.unwrap_or(false),
                database_id,
                tags: tag_ids,
                environment: format!("APP_NAME={name}\nAPP_ENV=production\n"),
                deployment_script: None,
                auto_source: true,
                deploy_hook_token: hook,
                created_at: now,
                updated_at: now,
                deleted_at: None,
            },
        );
        let domain_name = if domain_mode == "on-forge" { format!("{name}.on-forge.com") } else { name };
        let domain_id = self.alloc();
        self.domains.insert(
            domain_id,
            Domain {
                id: domain_id,
                site_id: id,
                name: domain_name,
                primary: true,
                www_redirect_type: www_redirect_type.unwrap_or_else(|| "none".into()),
                allow_wildcard_subdomains: wildcards.unwrap_or(false),
                created_at: now,
                updated_at: now,
                deleted_at: None,
            },
        );
        Ok(id)
    }

    pub fn update_site(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.site_mut(org, server_id, site_id)?;
        let mut input = Input::new(body);
        let root_path = input.string("root_path", false);
        let directory = input.string("directory", false);
        let site_type = input.one_of("type", false, v::SITE_TYPES);
        let php_version = input.one_of("php_version", false, v::PHP_VERSIONS);
        let push_to_deploy = input.boolean("push_to_deploy", false);
        let branch = input.string("repository_branch", false);
        let retention = input.integer("deployment_retention", false, 1);
        if retention.is_some_and(|r| r > 100) {
            input.error("deployment_retention", "The deployment retention field must not be greater than 100.");
        }
        validated(input)?;
        let site = self.site_mut(org, server_id, site_id)?;
        if let Some(r) = root_path {
            site.root_directory = r;
        }
        if let Some(d) = directory {
            site.web_directory =
                format!("{}/{}", site.root_directory, d.trim_start_matches('/')).trim_end_matches('/').to_string();
        }
        if let Some(t) = site_type {
            site.site_type = t;
        }
        if php_version.is_some() {
            site.php_version = php_version;
        }
        if let Some(p) = push_to_deploy {
            site.quick_deploy = p;
        }
        if let (Some(b), Some(repo)) = (branch, site.repository.as_mut()) {
            repo.branch = Some(b);
        }
        if retention.is_some() {
            site.deployment_retention = retention;
        }
        site.updated_at = now;
        Ok(())
    }

    /// Deleting a site takes its workers and site scheduler jobs with it, but **not** its
    /// database or database user (Forge keeps those on the server).
    pub fn delete_site(&mut self, org: &str, server_id: u64, site_id: u64, now: DateTime<Utc>) -> OpResult<()> {
        let site = self.site_mut(org, server_id, site_id)?;
        if site.deleted_at.is_some() {
            return Ok(());
        }
        site.deleted_at = Some(now);
        for p in self.background_processes.values_mut().filter(|p| p.site_id == Some(site_id)) {
            p.deleted_at.get_or_insert(now);
        }
        for j in self.scheduled_jobs.values_mut().filter(|j| j.site_id == Some(site_id)) {
            j.deleted_at.get_or_insert(now);
        }
        Ok(())
    }

    pub fn put_environment(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.site_mut(org, server_id, site_id)?;
        let mut input = Input::new(body);
        let env = match body.get("environment") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => input.string("environment", true),
        };
        input.boolean("cache", false);
        input.boolean("queues", false);
        input.string("encryption_key", false);
        validated(input)?;
        let site = self.site_mut(org, server_id, site_id)?;
        site.environment = env.unwrap_or_default();
        site.updated_at = now;
        Ok(())
    }

    pub fn put_deployment_script(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.site_mut(org, server_id, site_id)?;
        let mut input = Input::new(body);
        let content = match body.get("content") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => input.string("content", true),
        };
        let auto_source = input.boolean("auto_source", false);
        validated(input)?;
        let site = self.site_mut(org, server_id, site_id)?;
        site.deployment_script = content;
        if let Some(a) = auto_source {
            site.auto_source = a;
        }
        site.updated_at = now;
        Ok(())
    }

    pub fn set_push_to_deploy(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        on: bool,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        let site = self.site_mut(org, server_id, site_id)?;
        site.quick_deploy = on;
        site.updated_at = now;
        Ok(())
    }

    pub fn regenerate_deploy_hook(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        let site = self.site_mut(org, server_id, site_id)?;
        site.deploy_hook_token =
            format!("{:x}", now.timestamp_millis().unsigned_abs().wrapping_mul(2_654_435_761) ^ site_id);
        Ok(())
    }

    // ---- deployments ----

    pub fn trigger_deployment(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        fails: bool,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        let site = self.site(org, Some(server_id), site_id)?;
        if site.deleted_at.is_some() {
            return Err(ApiError::missing("Site", site_id));
        }
        let branch = site.repository.as_ref().and_then(|r| r.branch.clone());
        let id = self.alloc();
        self.deployments.insert(
            id,
            Deployment {
                id,
                site_id,
                commit_hash: Some(format!("{:040x}", id.wrapping_mul(0x9e37_79b9_7f4a_7c15))),
                commit_author: Some("Switchyard Sim".into()),
                commit_message: Some(format!("Deployment {id}")),
                branch,
                kind: "manual".into(),
                fails,
                created_at: now,
            },
        );
        Ok(id)
    }

    pub fn deployment(&self, org: &str, server_id: u64, site_id: u64, deployment_id: u64) -> OpResult<&Deployment> {
        self.site(org, Some(server_id), site_id)?;
        self.deployments
            .get(&deployment_id)
            .filter(|d| d.site_id == site_id)
            .ok_or_else(|| ApiError::missing("Deployment", deployment_id))
    }

    /// The running deployment of a site, if any (`site.deployment_status` and `…/deployments/status`).
    pub fn running_deployment(
        &self,
        site_id: u64,
        now: DateTime<Utc>,
        delay: Duration,
    ) -> Option<(&Deployment, lifecycle::DeploymentView)> {
        self.deployments
            .values()
            .rev()
            .filter(|d| d.site_id == site_id)
            .map(|d| (d, lifecycle::deployment_view(d.created_at, d.fails, now, delay)))
            .find(|(_, view)| !lifecycle::deployment_is_terminal(view.status))
    }

    // ---- domains and certificates ----

    pub fn create_domain(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        self.site(org, Some(server_id), site_id)?;
        let mut input = Input::new(body);
        let name = input.string_max("name", true, 253);
        let wildcard = input.boolean("allow_wildcard_subdomains", true);
        let www = input.one_of("www_redirect_type", true, v::WWW_REDIRECT_TYPES);
        if let Some(n) = &name
            && self.domains.values().any(|d| d.site_id == site_id && &d.name == n)
        {
            v::taken(&mut input, "name");
        }
        validated(input)?;
        let id = self.alloc();
        self.domains.insert(
            id,
            Domain {
                id,
                site_id,
                name: name.unwrap_or_default(),
                primary: false,
                www_redirect_type: www.unwrap_or_default(),
                allow_wildcard_subdomains: wildcard.unwrap_or(false),
                created_at: now,
                updated_at: now,
                deleted_at: None,
            },
        );
        Ok(id)
    }

    pub fn domain(&self, org: &str, server_id: u64, site_id: u64, domain_id: u64) -> OpResult<&Domain> {
        self.site(org, Some(server_id), site_id)?;
        self.domains
            .get(&domain_id)
            .filter(|d| d.site_id == site_id)
            .ok_or_else(|| ApiError::missing("DomainRecord", domain_id))
    }

    pub fn update_domain(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        domain_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.domain(org, server_id, site_id, domain_id)?;
        let mut input = Input::new(body);
        let www = input.one_of("www_redirect_type", true, v::WWW_REDIRECT_TYPES);
        let wildcard = input.boolean("allow_wildcard_subdomains", false);
        validated(input)?;
        let domain = self.domains.get_mut(&domain_id).ok_or_else(|| ApiError::missing("DomainRecord", domain_id))?;
        domain.www_redirect_type = www.unwrap_or_default();
        if let Some(w) = wildcard {
            domain.allow_wildcard_subdomains = w;
        }
        domain.updated_at = now;
        Ok(())
    }

    pub fn delete_domain(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        domain_id: u64,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.domain(org, server_id, site_id, domain_id)?;
        if let Some(d) = self.domains.get_mut(&domain_id) {
            d.deleted_at.get_or_insert(now);
        }
        Ok(())
    }

    pub fn domain_action(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        domain_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.domain(org, server_id, site_id, domain_id)?;
        let mut input = Input::new(body);
        let action = input.one_of("action", true, &["enable", "disable", "mark-as-primary"]);
        validated(input)?;
        if action.as_deref() == Some("mark-as-primary") {
            for d in self.domains.values_mut().filter(|d| d.site_id == site_id) {
                d.primary = d.id == domain_id;
                d.updated_at = now;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // the nesting ids are the API's, not a design choice
    pub fn request_certificate(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        domain_id: u64,
        body: &Map<String, Value>,
        fails: bool,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        self.domain(org, server_id, site_id, domain_id)?;
        let mut input = Input::new(body);
        let cert_type = input.one_of("type", true, v::CERTIFICATE_TYPES);
        input.boolean("enable", false);
        let le = input.object("letsencrypt").cloned().unwrap_or_default();
        let mut le_input = Input::new(&le);
        let verification = le_input.one_of("verification_method", false, &["http-01", "dns-01"]);
        let key_type = le_input.one_of("key_type", false, &["ecdsa", "rsa"]);
        let chain = le_input.one_of("preferred_chain", false, &["ISRG Root X1"]);
        for (field, messages) in le_input.into_errors() {
            for m in messages {
                input.error(&format!("letsencrypt.{field}"), m);
            }
        }
        if cert_type.as_deref().is_some_and(|t| t != "letsencrypt") {
            input.error("type", "Only letsencrypt certificates are supported by the simulator.");
        }
        validated(input)?;
        let id = self.alloc();
        self.certificates.insert(
            id,
            Certificate {
                id,
                site_id,
                domain_id,
                cert_type: cert_type.unwrap_or_default(),
                verification_method: verification.or(Some("http-01".into())),
                key_type: key_type.or(Some("ecdsa".into())),
                preferred_chain: chain,
                fails,
                created_at: now,
                deleted_at: None,
            },
        );
        Ok(id)
    }

    pub fn certificate(
        &self,
        org: &str,
        server_id: u64,
        site_id: u64,
        domain_id: Option<u64>,
        cert_id: u64,
    ) -> OpResult<&Certificate> {
        self.site(org, Some(server_id), site_id)?;
        self.certificates
            .get(&cert_id)
            .filter(|c| c.site_id == site_id && domain_id.is_none_or(|d| d == c.domain_id))
            .ok_or_else(|| ApiError::missing("Certificate", cert_id))
    }

    /// The newest installed, non-deleted certificate of a domain is the active one.
    pub fn active_certificate(&self, domain_id: u64, now: DateTime<Utc>, delay: Duration) -> Option<&Certificate> {
        self.certificates
            .values()
            .rev()
            .filter(|c| c.domain_id == domain_id)
            .find(|c| lifecycle::certificate_view(c.created_at, c.fails, c.deleted_at, now, delay).installed)
    }

    pub fn delete_certificate(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        domain_id: Option<u64>,
        cert_id: u64,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.certificate(org, server_id, site_id, domain_id, cert_id)?;
        if let Some(c) = self.certificates.get_mut(&cert_id) {
            c.deleted_at.get_or_insert(now);
        }
        Ok(())
    }

    // ---- databases ----

    pub fn create_database(
        &mut self,
        org: &str,
        server_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<(u64, Option<u64>)> {
        self.server(org, server_id)?;
        let mut input = Input::new(body);
        let name = input.string("name", true);
        if let Some(n) = &name {
            v::check_database_name(&mut input, "name", n);
            if !input.has_error("name") && self.databases.values().any(|d| d.server_id == server_id && &d.name == n) {
                v::taken(&mut input, "name");
            }
        }
        let user = input.string("user", false);
        if let Some(u) = &user {
            v::check_database_user(&mut input, "user", u);
            if !input.has_error("user")
                && self.database_users.values().any(|x| x.server_id == server_id && &x.name == u)
            {
                v::taken(&mut input, "user");
            }
        }
        let password = input.string_max("password", false, 255);
        if user.is_some() && password.is_none() {
            input.error("password", "The password field is required when user is present.");
        }
        input.id_list("backup_configuration_ids");
        validated(input)?;
        let id = self.alloc();
        self.databases
            .insert(id, Database { id, server_id, name: name.unwrap_or_default(), created_at: now, deleted_at: None });
        let user_id = user.map(|name| {
            let uid = self.alloc();
            self.database_users.insert(
                uid,
                DatabaseUser {
                    id: uid,
                    server_id,
                    name,
                    database_ids: vec![id],
                    read_only: false,
                    created_at: now,
                    updated_at: None,
                    deleted_at: None,
                },
            );
            uid
        });
        Ok((id, user_id))
    }

    pub fn database(&self, org: &str, server_id: u64, id: u64) -> OpResult<&Database> {
        self.server(org, server_id)?;
        self.databases.get(&id).filter(|d| d.server_id == server_id).ok_or_else(|| ApiError::missing("Database", id))
    }

    pub fn delete_database(&mut self, org: &str, server_id: u64, id: u64, now: DateTime<Utc>) -> OpResult<()> {
        self.database(org, server_id, id)?;
        if let Some(d) = self.databases.get_mut(&id) {
            d.deleted_at.get_or_insert(now);
        }
        for u in self.database_users.values_mut() {
            u.database_ids.retain(|d| *d != id);
        }
        Ok(())
    }

    /// Forget a record whose real side effect (MariaDB) failed.
    pub fn discard(&mut self, id: u64) {
        self.databases.remove(&id);
        self.database_users.remove(&id);
    }

    fn check_database_ids(&self, input: &mut Input<'_>, server_id: u64, ids: &[u64]) {
        if ids
            .iter()
            .any(|id| !self.databases.get(id).is_some_and(|d| d.server_id == server_id && d.deleted_at.is_none()))
        {
            input.error("database_ids", "The selected database ids is invalid.");
        }
    }

    pub fn create_database_user(
        &mut self,
        org: &str,
        server_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        self.server(org, server_id)?;
        let mut input = Input::new(body);
        let name = input.string("name", true);
        if let Some(n) = &name {
            v::check_database_user(&mut input, "name", n);
            if !input.has_error("name")
                && self.database_users.values().any(|u| u.server_id == server_id && &u.name == n)
            {
                v::taken(&mut input, "name");
            }
        }
        input.string_max("password", true, 255);
        let ids = input.id_list("database_ids").unwrap_or_default();
        self.check_database_ids(&mut input, server_id, &ids);
        let read_only = input.boolean("read_only", false).unwrap_or(false);
        validated(input)?;
        let id = self.alloc();
        self.database_users.insert(
            id,
            DatabaseUser {
                id,
                server_id,
                name: name.unwrap_or_default(),
                database_ids: ids,
                read_only,
                created_at: now,
                updated_at: None,
                deleted_at: None,
            },
        );
        Ok(id)
    }

    pub fn database_user(&self, org: &str, server_id: u64, id: u64) -> OpResult<&DatabaseUser> {
        self.server(org, server_id)?;
        self.database_users
            .get(&id)
            .filter(|u| u.server_id == server_id)
            .ok_or_else(|| ApiError::missing("DatabaseUser", id))
    }

    /// PUT replaces the grants when `database_ids` is given.
    pub fn update_database_user(
        &mut self,
        org: &str,
        server_id: u64,
        id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.database_user(org, server_id, id)?;
        let mut input = Input::new(body);
        input.string_max("password", false, 255);
        let ids = input.id_list("database_ids");
        if let Some(ids) = &ids {
            self.check_database_ids(&mut input, server_id, ids);
        }
        validated(input)?;
        let user = self.database_users.get_mut(&id).ok_or_else(|| ApiError::missing("DatabaseUser", id))?;
        if let Some(ids) = ids {
            user.database_ids = ids;
        }
        user.updated_at = Some(now);
        Ok(())
    }

    pub fn delete_database_user(&mut self, org: &str, server_id: u64, id: u64, now: DateTime<Utc>) -> OpResult<()> {
        self.database_user(org, server_id, id)?;
        if let Some(u) = self.database_users.get_mut(&id) {
            u.deleted_at.get_or_insert(now);
        }
        Ok(())
    }

    // ---- background processes ----

    pub fn create_background_process(
        &mut self,
        org: &str,
        server_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        self.server(org, server_id)?;
        let mut input = Input::new(body);
        let name = input.string_max("name", true, 255);
        let command = input.string("command", true);
        let user = input.string("user", true);
        let processes = input.integer("processes", true, 1);
        let site_id = input.integer("site_id", false, 1).map(|i| i as u64);
        let directory = input.string("directory", false);
        let startsecs = input.integer("startsecs", false, 0);
        let stopwaitsecs = input.integer("stopwaitsecs", false, 0);
        let stopsignal = input.string("stopsignal", false);
        let site_user =
            site_id.and_then(|s| self.sites.get(&s)).filter(|s| s.server_id == server_id).map(|s| s.user.clone());
        if site_id.is_some() && site_user.is_none() {
            input.error("site_id", "The selected site id is invalid.");
        }
        if let Some(u) = &user
            && u != "root"
            && u != "forge"
            && site_user.as_ref() != Some(u)
        {
            input.error("user", "The selected user is invalid.");
        }
        validated(input)?;
        let id = self.alloc();
        self.background_processes.insert(
            id,
            BackgroundProcess {
                id,
                server_id,
                name: name.unwrap_or_default(),
                command: command.unwrap_or_default(),
                user: user.unwrap_or_default(),
                directory,
                processes: processes.unwrap_or(1),
                site_id,
                startsecs,
                stopwaitsecs,
                stopsignal,
                config: None,
                created_at: now,
                updated_at: None,
                deleted_at: None,
            },
        );
        Ok(id)
    }

    pub fn background_process(&self, org: &str, server_id: u64, id: u64) -> OpResult<&BackgroundProcess> {
        self.server(org, server_id)?;
        self.background_processes
            .get(&id)
            .filter(|p| p.server_id == server_id)
            .ok_or_else(|| ApiError::missing("BackgroundProcess", id))
    }

    /// Forge answers 500 to an update without `config` (R2), so the sim does too.
    pub fn update_background_process(
        &mut self,
        org: &str,
        server_id: u64,
        id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.background_process(org, server_id, id)?;
        let mut input = Input::new(body);
        let name = input.string_max("name", true, 255);
        let config = input.string("config", false);
        validated(input)?;
        let Some(config) = config else {
            return Err(ApiError::Server("Server Error".into()));
        };
        let p = self.background_processes.get_mut(&id).ok_or_else(|| ApiError::missing("BackgroundProcess", id))?;
        p.name = name.unwrap_or_default();
        p.config = Some(config);
        p.updated_at = Some(now);
        Ok(())
    }

    pub fn background_process_action(
        &mut self,
        org: &str,
        server_id: u64,
        id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
        delay: Duration,
    ) -> OpResult<()> {
        let p = self.background_process(org, server_id, id)?;
        let status = lifecycle::install_status(p.created_at, p.deleted_at, now, delay);
        let mut input = Input::new(body);
        let action = input.one_of("action", true, &["restart", "stop", "start", "empty-log"]);
        validated(input)?;
        if action.as_deref() == Some("restart") && status != "installed" {
            return Err(ApiError::Server("Server Error".into()));
        }
        Ok(())
    }

    pub fn delete_background_process(
        &mut self,
        org: &str,
        server_id: u64,
        id: u64,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.background_process(org, server_id, id)?;
        if let Some(p) = self.background_processes.get_mut(&id) {
            p.deleted_at.get_or_insert(now);
        }
        Ok(())
    }

    // ---- scheduled jobs ----

    pub fn create_job(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: Option<u64>,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        match site_id {
            Some(s) => {
                self.site(org, Some(server_id), s)?;
            }
            None => {
                self.server(org, server_id)?;
            }
        }
        let mut input = Input::new(body);
        let command = input.string("command", true);
        let user = input.string("user", true);
        let frequency = input.one_of("frequency", true, v::JOB_FREQUENCIES);
        let cron = input.string("cron", frequency.as_deref() == Some("custom"));
        let name = input.string_max("name", false, 255);
        let heartbeat = input.boolean("heartbeat", false);
        validated(input)?;
        let frequency = frequency.unwrap_or_default();
        let cron =
            if frequency == "custom" { cron.unwrap_or_default() } else { frequency_cron(&frequency).to_string() };
        let id = self.alloc();
        self.scheduled_jobs.insert(
            id,
            ScheduledJob {
                id,
                server_id,
                site_id,
                name,
                command: command.unwrap_or_default(),
                user: user.unwrap_or_default(),
                frequency,
                cron,
                heartbeat,
                created_at: now,
                deleted_at: None,
            },
        );
        Ok(id)
    }

    pub fn job(&self, org: &str, server_id: u64, site_id: Option<u64>, id: u64) -> OpResult<&ScheduledJob> {
        self.server(org, server_id)?;
        if let Some(s) = site_id {
            self.site(org, Some(server_id), s)?;
        }
        self.scheduled_jobs
            .get(&id)
            .filter(|j| j.server_id == server_id && j.site_id == site_id)
            .ok_or_else(|| ApiError::missing("Job", id))
    }

    pub fn delete_job(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: Option<u64>,
        id: u64,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.job(org, server_id, site_id, id)?;
        if let Some(j) = self.scheduled_jobs.get_mut(&id) {
            j.deleted_at.get_or_insert(now);
        }
        Ok(())
    }

    // ---- site commands ----

    pub fn run_command(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        self.site(org, Some(server_id), site_id)?;
        let mut input = Input::new(body);
        let command = input.string("command", true);
        validated(input)?;
        let command = command.unwrap_or_default();
        let id = self.alloc();
        let fails = command.contains("exit 1");
        let user_id = self.user_id;
        self.commands.insert(id, SiteCommand { id, site_id, command, user_id, fails, created_at: now });
        Ok(id)
    }

    pub fn command(&self, org: &str, server_id: u64, site_id: u64, id: u64) -> OpResult<&SiteCommand> {
        self.site(org, Some(server_id), site_id)?;
        self.commands.get(&id).filter(|c| c.site_id == site_id).ok_or_else(|| ApiError::missing("SiteCommand", id))
    }

    pub fn delete_command(&mut self, org: &str, server_id: u64, site_id: u64, id: u64) -> OpResult<()> {
        self.command(org, server_id, site_id, id)?;
        self.commands.remove(&id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
