//! Sites: creation (with their primary domain), settings, environment, deployment
//! script, push-to-deploy and deploy hook, and deletion, which takes workers and jobs along.

use super::{Domain, OpResult, World, validated};
use crate::forge::validation::{self as v, Input};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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

impl World {
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
}
