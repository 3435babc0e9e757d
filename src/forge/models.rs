//! Typed request and response models. Responses are lenient (every optional field may be
//! null or missing); requests serialize exactly the keys Forge documents.

use super::config::Password;
use serde::{Deserialize, Serialize};

/// Deserialize `null` as the type's default (the spec marks keys required that Forge sends as null).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct UserAttributes {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: u64,
    pub name: String,
    pub slug: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct OrganizationAttributes {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub slug: String,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Server {
    #[serde(skip)]
    pub id: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub private_ip_address: Option<String>,
    #[serde(default)]
    pub php_version: Option<String>,
    #[serde(default)]
    pub database_type: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub is_ready: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct SiteRepository {
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// Whether a Forge object in `status` is on its way out (`removing`, or
/// `deleting` for certificates): it counts as absent and is never deleted twice.
pub fn going_away(status: &str) -> bool {
    matches!(status, "removing" | "deleting" | "uninstalling")
}

/// Whether a site in this SiteStatus is provisioned: every status the document lists after
/// installation (`deployed`, `never-deployed`, `deploying`, `maintenance`, and `failed`, which
/// follows a failed deployment; the deployment step reports that failure) as well as `installed`.
pub fn site_provisioned(status: &str) -> bool {
    matches!(status, "installed" | "deployed" | "never-deployed" | "deploying" | "maintenance" | "failed")
}

/// A Forge site. `status`: `installing`, `installed`, `removing`, … (SiteStatus).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Site {
    #[serde(skip)]
    pub id: u64,
    /// From `include=server` (org-wide lists), or the server a server-level call named.
    #[serde(skip)]
    pub server_id: Option<u64>,
    /// From `include=tags`: only the site lists declare it, so a single site read
    /// (`get_site`, the create answer) carries none.
    #[serde(skip)]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub https: bool,
    #[serde(default)]
    pub web_directory: Option<String>,
    #[serde(default)]
    pub root_directory: Option<String>,
    #[serde(default)]
    pub php_version: Option<String>,
    #[serde(default)]
    pub deployment_status: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub quick_deploy: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub isolated: bool,
    #[serde(default)]
    pub repository: Option<SiteRepository>,
    #[serde(default)]
    pub app_type: Option<String>,
    #[serde(default)]
    pub deployment_script: Option<String>,
}

impl Site {
    /// Provisioned, and its repository (if any) installed.
    pub fn is_ready(&self) -> bool {
        site_provisioned(&self.status)
            && self.repository.as_ref().and_then(|r| r.status.as_deref()).is_none_or(|s| s == "installed")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Commit {
    #[serde(default)]
    pub hash: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
}

/// DeploymentStatus: `queued, pending, deploying, finished, failed, failed-build, cancelled`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Deployment {
    #[serde(skip)]
    pub id: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    #[serde(default, deserialize_with = "null_default")]
    pub commit: Commit,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

impl Deployment {
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "finished" | "failed" | "failed-build" | "cancelled")
    }
    pub fn succeeded(&self) -> bool {
        self.status == "finished"
    }
}

/// `GET …/deployments/status`: the deployment running now (`status: null` when idle).
/// Not the CRD's `api::preview_environment::DeploymentStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct CurrentDeployment {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct DeploymentScript {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub auto_source: bool,
}

/// DomainRecordStatus: `pending, connecting, enabled, removing, …`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct DomainRecord {
    #[serde(skip)]
    pub id: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// `primary` or `alias`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    #[serde(default)]
    pub www_redirect_type: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub allow_wildcard_subdomains: bool,
}

/// `request_status`: verifying|creating|created; `status`: ResourceState (installing,
/// installed, failed, deleting, …).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Certificate {
    #[serde(skip)]
    pub id: u64,
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(default)]
    pub request_status: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    #[serde(default, deserialize_with = "null_default")]
    pub active: bool,
    #[serde(default)]
    pub verification_method: Option<String>,
    #[serde(default)]
    pub key_type: Option<String>,
}

impl Certificate {
    pub fn is_failed(&self) -> bool {
        self.status.starts_with("failed")
    }
    pub fn is_active(&self) -> bool {
        self.active && self.status == "installed"
    }
}

/// A database schema. `status`: installing|installed|removing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Database {
    #[serde(skip)]
    pub id: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
}

/// `status`: installing|installed|updating|removing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct DatabaseUser {
    #[serde(skip)]
    pub id: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
}

/// A daemon / queue worker. Forge returns no name or site_id for it (R2 #26).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct BackgroundProcess {
    #[serde(skip)]
    pub id: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub command: String,
    #[serde(default, deserialize_with = "null_default")]
    pub user: String,
    #[serde(default)]
    pub directory: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub processes: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ScheduledJob {
    #[serde(skip)]
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub command: String,
    #[serde(default, deserialize_with = "null_default")]
    pub user: String,
    #[serde(default, deserialize_with = "null_default")]
    pub frequency: String,
    #[serde(default)]
    pub cron: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
}

/// CommandStatus: `waiting, running, finished, timeout, failed`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct SiteCommand {
    #[serde(skip)]
    pub id: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub command: String,
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub error_output: Option<String>,
    #[serde(default)]
    pub duration: Option<String>,
}

impl SiteCommand {
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "finished" | "timeout" | "failed")
    }
}

// ---- requests ----

/// `POST /orgs/{org}/servers/{server}/sites`. `site_type` and `domain_mode` are required at runtime.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateSite {
    #[serde(rename = "type")]
    pub site_type: String,
    /// `on-forge` (name = one subdomain label) or `custom` (name = the domain).
    pub domain_mode: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub www_redirect_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_wildcard_subdomains: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_isolated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolated_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub php_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zero_downtime_deployments: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_control_provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_user_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_composer_dependencies: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_to_deploy: Option<bool>,
    /// The only way to tag a site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

impl CreateSite {
    /// A site on a Forge-provided subdomain (`<label>.on-forge.com`).
    pub fn on_forge(label: impl Into<String>, site_type: impl Into<String>) -> Self {
        Self { site_type: site_type.into(), domain_mode: "on-forge".into(), name: label.into(), ..Default::default() }
    }

    /// A site on a custom domain (requires the redirect and wildcard settings).
    pub fn custom_domain(domain: impl Into<String>, site_type: impl Into<String>) -> Self {
        Self {
            site_type: site_type.into(),
            domain_mode: "custom".into(),
            name: domain.into(),
            www_redirect_type: Some("none".into()),
            allow_wildcard_subdomains: Some(false),
            ..Default::default()
        }
    }
}

/// `PUT …/sites/{site}`; all optional.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdateSite {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub site_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub php_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_to_deploy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_retention: Option<u32>,
}

/// `PUT …/environment`: note the key is `environment` (reads return `content`).
#[derive(Clone, Default, Serialize)]
pub struct PutEnvironment {
    pub environment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queues: Option<bool>,
}

impl std::fmt::Debug for PutEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // .env files hold secrets: show only the size.
        f.debug_struct("PutEnvironment").field("environment_bytes", &self.environment.len()).finish()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CreateDomain {
    pub name: String,
    pub allow_wildcard_subdomains: bool,
    pub www_redirect_type: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LetsEncryptOptions {
    pub verification_method: String,
    pub key_type: String,
    pub preferred_chain: Option<String>,
}

/// `POST …/domains/{id}/certificates`.
#[derive(Debug, Clone, Serialize)]
pub struct RequestCertificate {
    #[serde(rename = "type")]
    pub kind: String,
    pub enable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub letsencrypt: Option<LetsEncryptOptions>,
}

impl RequestCertificate {
    /// Let's Encrypt, HTTP-01, ECDSA, enabled on installation.
    pub fn letsencrypt() -> Self {
        Self {
            kind: "letsencrypt".into(),
            enable: true,
            letsencrypt: Some(LetsEncryptOptions {
                verification_method: "http-01".into(),
                key_type: "ecdsa".into(),
                preferred_chain: None,
            }),
        }
    }
}

/// `POST …/database/schemas`: name ≤ 63; optional user (≤ 32) + password created with it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateDatabase {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
}

/// `POST …/database/users`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateDatabaseUser {
    pub name: String,
    pub password: Password,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub database_ids: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// `PUT …/database/users/{id}`: `database_ids` replaces the grants.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdateDatabaseUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_ids: Option<Vec<u64>>,
}

/// `POST …/background-processes`. A queue worker is one with `site_id` and `directory`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateBackgroundProcess {
    pub name: String,
    pub command: String,
    /// `root`, `forge` or the site's isolated user.
    pub user: String,
    pub processes: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startsecs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopwaitsecs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopsignal: Option<String>,
}

/// `PUT …/background-processes/{id}`: Forge answers 500 without `config`, so it is required here.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateBackgroundProcess {
    pub name: String,
    pub config: String,
}

/// `POST …/scheduled-jobs`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateScheduledJob {
    pub command: String,
    pub user: String,
    /// minutely|hourly|nightly|weekly|monthly|reboot|custom
    pub frequency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<bool>,
}

/// Where scheduled jobs live: the server or one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobScope {
    Server { server: u64 },
    Site { server: u64, site: u64 },
}
