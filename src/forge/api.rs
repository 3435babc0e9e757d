//! The [`ForgeApi`] trait: every Forge operation switchyard uses. Controllers hold
//! `Arc<dyn ForgeApi>`; tests can substitute fakes.

use super::error::ForgeError;
use super::models::*;
use async_trait::async_trait;

pub type ForgeResult<T> = Result<T, ForgeError>;

/// Forge's organization-scoped API. List methods follow every page.
#[async_trait]
pub trait ForgeApi: Send + Sync {
    async fn current_user(&self) -> ForgeResult<User>;
    async fn get_organization(&self) -> ForgeResult<Organization>;
    async fn list_servers(&self) -> ForgeResult<Vec<Server>>;
    async fn get_server(&self, server: u64) -> ForgeResult<Server>;

    /// Org-wide site list with tags and server ids (`include=tags,server`).
    /// `name` is passed as `filter[name]`, which may match partially: compare names yourself.
    async fn list_sites(&self, name: Option<&str>) -> ForgeResult<Vec<Site>>;
    async fn list_server_sites(&self, server: u64, name: Option<&str>) -> ForgeResult<Vec<Site>>;
    /// `GET /orgs/{org}/sites/{site}` (no server segment), with tags.
    async fn get_site(&self, site: u64) -> ForgeResult<Site>;
    /// Not idempotent: prefer [`super::ensure::ensure_site`].
    async fn create_site(&self, server: u64, req: &CreateSite) -> ForgeResult<Site>;
    async fn update_site(&self, server: u64, site: u64, req: &UpdateSite) -> ForgeResult<()>;
    async fn delete_site(&self, server: u64, site: u64) -> ForgeResult<()>;

    async fn get_environment(&self, server: u64, site: u64) -> ForgeResult<String>;
    async fn put_environment(&self, server: u64, site: u64, req: &PutEnvironment) -> ForgeResult<()>;

    /// Not idempotent: prefer [`super::ensure::deploy`].
    async fn trigger_deployment(&self, server: u64, site: u64) -> ForgeResult<Deployment>;
    /// Newest first (`sort=-created_at`), at most `limit` when given.
    async fn list_deployments(&self, server: u64, site: u64, limit: Option<usize>) -> ForgeResult<Vec<Deployment>>;
    async fn get_deployment(&self, server: u64, site: u64, deployment: u64) -> ForgeResult<Deployment>;
    async fn deployment_status(&self, server: u64, site: u64) -> ForgeResult<CurrentDeployment>;
    async fn deployment_log(&self, server: u64, site: u64, deployment: u64) -> ForgeResult<String>;
    async fn get_deployment_script(&self, server: u64, site: u64) -> ForgeResult<DeploymentScript>;
    async fn put_deployment_script(
        &self,
        server: u64,
        site: u64,
        content: &str,
        auto_source: Option<bool>,
    ) -> ForgeResult<DeploymentScript>;
    async fn set_push_to_deploy(&self, server: u64, site: u64, enabled: bool) -> ForgeResult<()>;

    async fn list_domains(&self, server: u64, site: u64) -> ForgeResult<Vec<DomainRecord>>;
    async fn create_domain(&self, server: u64, site: u64, req: &CreateDomain) -> ForgeResult<DomainRecord>;
    async fn get_domain(&self, server: u64, site: u64, domain: u64) -> ForgeResult<DomainRecord>;
    async fn delete_domain(&self, server: u64, site: u64, domain: u64) -> ForgeResult<()>;
    async fn request_certificate(
        &self,
        server: u64,
        site: u64,
        domain: u64,
        req: &RequestCertificate,
    ) -> ForgeResult<Certificate>;
    /// Certificates of one domain, or of the whole site when `domain` is `None`.
    async fn list_certificates(&self, server: u64, site: u64, domain: Option<u64>) -> ForgeResult<Vec<Certificate>>;
    /// The active certificate, `None` when Forge answers 404.
    async fn active_certificate(&self, server: u64, site: u64, domain: u64) -> ForgeResult<Option<Certificate>>;
    async fn get_certificate(&self, server: u64, site: u64, domain: u64, certificate: u64) -> ForgeResult<Certificate>;
    async fn delete_certificate(&self, server: u64, site: u64, domain: u64, certificate: u64) -> ForgeResult<()>;

    async fn list_databases(&self, server: u64, name: Option<&str>) -> ForgeResult<Vec<Database>>;
    /// Not idempotent (a duplicate name is a 422): prefer [`super::ensure::ensure_database`].
    async fn create_database(&self, server: u64, req: &CreateDatabase) -> ForgeResult<Database>;
    async fn get_database(&self, server: u64, database: u64) -> ForgeResult<Database>;
    async fn delete_database(&self, server: u64, database: u64) -> ForgeResult<()>;
    async fn list_database_users(&self, server: u64, name: Option<&str>) -> ForgeResult<Vec<DatabaseUser>>;
    async fn create_database_user(&self, server: u64, req: &CreateDatabaseUser) -> ForgeResult<DatabaseUser>;
    async fn get_database_user(&self, server: u64, user: u64) -> ForgeResult<DatabaseUser>;
    async fn update_database_user(&self, server: u64, user: u64, req: &UpdateDatabaseUser) -> ForgeResult<()>;
    async fn delete_database_user(&self, server: u64, user: u64) -> ForgeResult<()>;

    /// `filter[site_id]` when given (a site's queue workers).
    async fn list_background_processes(&self, server: u64, site_id: Option<u64>)
    -> ForgeResult<Vec<BackgroundProcess>>;
    async fn create_background_process(
        &self,
        server: u64,
        req: &CreateBackgroundProcess,
    ) -> ForgeResult<BackgroundProcess>;
    async fn get_background_process(&self, server: u64, process: u64) -> ForgeResult<BackgroundProcess>;
    async fn update_background_process(
        &self,
        server: u64,
        process: u64,
        req: &UpdateBackgroundProcess,
    ) -> ForgeResult<()>;
    async fn delete_background_process(&self, server: u64, process: u64) -> ForgeResult<()>;

    /// Queue a command. Forge answers 202 with no body, so the id is `None` unless it sent one.
    async fn run_site_command(&self, server: u64, site: u64, command: &str) -> ForgeResult<Option<u64>>;
    /// Newest first; `command` is `filter[command]`; at most `limit` when given.
    async fn list_site_commands(
        &self,
        server: u64,
        site: u64,
        command: Option<&str>,
        limit: Option<usize>,
    ) -> ForgeResult<Vec<SiteCommand>>;
    async fn get_site_command(&self, server: u64, site: u64, command: u64) -> ForgeResult<SiteCommand>;
    async fn site_command_output(&self, server: u64, site: u64, command: u64) -> ForgeResult<String>;

    async fn list_scheduled_jobs(&self, scope: JobScope) -> ForgeResult<Vec<ScheduledJob>>;
    async fn create_scheduled_job(&self, scope: JobScope, req: &CreateScheduledJob) -> ForgeResult<ScheduledJob>;
    async fn get_scheduled_job(&self, scope: JobScope, job: u64) -> ForgeResult<ScheduledJob>;
    async fn delete_scheduled_job(&self, scope: JobScope, job: u64) -> ForgeResult<()>;
}
