//! The [`ForgeApi`] of [`FakeForge`]: every method recorded through
//! `FakeForge::call`, with the semantics described in `fake_forge.rs`.

use async_trait::async_trait;

use super::fake_forge::{FakeForge, SERVER, State, check_server, matches, not_found, taken};
use crate::forge::*;

/// Forge's status for something being deleted, or `None` when it vanishes now.
fn removal(s: &State, removing: &'static str) -> Option<&'static str> {
    s.knobs.deletes_linger.then_some(removing)
}

#[async_trait]
impl ForgeApi for FakeForge {
    async fn current_user(&self) -> ForgeResult<User> {
        self.call("current_user", String::new(), |_| {
            Ok(User { id: 1, name: "Test".into(), email: "test@example.com".into() })
        })
    }

    async fn get_organization(&self) -> ForgeResult<Organization> {
        self.call("get_organization", String::new(), |_| {
            Ok(Organization { id: 1, name: "Test".into(), slug: "test".into() })
        })
    }

    async fn list_servers(&self) -> ForgeResult<Vec<Server>> {
        self.call("list_servers", String::new(), |_| {
            Ok(vec![Server { id: SERVER, is_ready: true, ..Default::default() }])
        })
    }

    async fn get_server(&self, server: u64) -> ForgeResult<Server> {
        self.call("get_server", format!("server={server}"), |_| {
            check_server(server)?;
            Ok(Server { id: SERVER, is_ready: true, ..Default::default() })
        })
    }

    async fn list_sites(&self, name: Option<&str>) -> ForgeResult<Vec<Site>> {
        self.call("list_sites", format!("name={name:?}"), |s| {
            Ok(s.sites.values().filter(|x| matches(&x.name, name)).cloned().collect())
        })
    }

    async fn list_server_sites(&self, server: u64, name: Option<&str>) -> ForgeResult<Vec<Site>> {
        self.call("list_server_sites", format!("name={name:?}"), |s| {
            check_server(server)?;
            Ok(s.sites.values().filter(|x| matches(&x.name, name)).cloned().collect())
        })
    }

    async fn get_site(&self, site: u64) -> ForgeResult<Site> {
        self.call("get_site", format!("site={site}"), |s| s.site(SERVER, site).cloned())
    }

    async fn create_site(&self, server: u64, req: &CreateSite) -> ForgeResult<Site> {
        self.call("create_site", format!("name={}", req.name), |s| {
            check_server(server)?;
            if s.sites.values().any(|x| x.name == req.name) {
                return Err(taken("name"));
            }
            let id = s.id();
            let user = req.isolated_user.clone().unwrap_or_else(|| "forge".into());
            let site = Site {
                id,
                server_id: Some(server),
                tags: req.tags.clone().unwrap_or_default(),
                name: req.name.clone(),
                status: s.knobs.site_status.into(),
                user: Some(user.clone()),
                web_directory: req.web_directory.clone(),
                root_directory: Some(format!("/home/{user}/{}", req.name)),
                php_version: req.php_version.clone(),
                isolated: req.is_isolated.unwrap_or(false),
                ..Default::default()
            };
            s.sites.insert(id, site.clone());
            Ok(site)
        })
    }

    async fn update_site(&self, server: u64, site: u64, req: &UpdateSite) -> ForgeResult<()> {
        self.call("update_site", format!("site={site} php={:?}", req.php_version), |s| {
            s.site(server, site)?;
            if let (Some(php), Some(x)) = (&req.php_version, s.sites.get_mut(&site)) {
                x.php_version = Some(php.clone());
            }
            Ok(())
        })
    }

    async fn delete_site(&self, server: u64, site: u64) -> ForgeResult<()> {
        self.call("delete_site", format!("site={site}"), |s| {
            s.site(server, site)?;
            match removal(s, "removing") {
                Some(status) => s.sites.get_mut(&site).into_iter().for_each(|x| x.status = status.into()),
                None => s.drop_site(site),
            }
            Ok(())
        })
    }

    async fn get_environment(&self, server: u64, site: u64) -> ForgeResult<String> {
        self.call("get_environment", format!("site={site}"), |s| {
            s.site(server, site)?;
            Ok(s.environments.get(&site).cloned().unwrap_or_default())
        })
    }

    async fn put_environment(&self, server: u64, site: u64, req: &PutEnvironment) -> ForgeResult<()> {
        self.call("put_environment", format!("site={site}"), |s| {
            s.site(server, site)?;
            s.environments.insert(site, req.environment.clone());
            Ok(())
        })
    }

    async fn trigger_deployment(&self, server: u64, site: u64) -> ForgeResult<Deployment> {
        self.call("trigger_deployment", format!("site={site}"), |s| {
            s.site(server, site)?;
            let id = s.id();
            let deployment = Deployment { id, status: s.knobs.deployment_status.into(), ..Default::default() };
            s.deployments.insert(id, (site, deployment.clone()));
            Ok(deployment)
        })
    }

    async fn list_deployments(&self, server: u64, site: u64, limit: Option<usize>) -> ForgeResult<Vec<Deployment>> {
        self.call("list_deployments", format!("site={site} limit={limit:?}"), |s| {
            s.site(server, site)?;
            let newest_first = s.deployments.values().rev().filter(|(x, _)| *x == site).map(|(_, d)| d.clone());
            Ok(newest_first.take(limit.unwrap_or(usize::MAX)).collect())
        })
    }

    async fn get_deployment(&self, server: u64, site: u64, deployment: u64) -> ForgeResult<Deployment> {
        self.call("get_deployment", format!("site={site} deployment={deployment}"), |s| {
            s.site(server, site)?;
            match s.deployments.get(&deployment) {
                Some((x, d)) if *x == site => Ok(d.clone()),
                _ => Err(not_found(format!("deployment {deployment}"))),
            }
        })
    }

    async fn deployment_status(&self, server: u64, site: u64) -> ForgeResult<CurrentDeployment> {
        self.call("deployment_status", format!("site={site}"), |s| {
            s.site(server, site)?;
            Ok(CurrentDeployment::default())
        })
    }

    async fn deployment_log(&self, server: u64, site: u64, deployment: u64) -> ForgeResult<String> {
        self.call("deployment_log", format!("site={site} deployment={deployment}"), |s| {
            s.site(server, site)?;
            Ok(String::new())
        })
    }

    async fn get_deployment_script(&self, server: u64, site: u64) -> ForgeResult<DeploymentScript> {
        self.call("get_deployment_script", format!("site={site}"), |s| {
            s.site(server, site)?;
            let content = s.scripts.get(&site).cloned().unwrap_or_else(|| "cd $FORGE_SITE_PATH\ngit pull".into());
            Ok(DeploymentScript { content: Some(content), auto_source: false })
        })
    }

    async fn put_deployment_script(
        &self,
        server: u64,
        site: u64,
        content: &str,
        auto_source: Option<bool>,
    ) -> ForgeResult<DeploymentScript> {
        self.call("put_deployment_script", format!("site={site}"), |s| {
            s.site(server, site)?;
            s.scripts.insert(site, content.into());
            Ok(DeploymentScript { content: Some(content.into()), auto_source: auto_source.unwrap_or(false) })
        })
    }

    async fn set_push_to_deploy(&self, server: u64, site: u64, enabled: bool) -> ForgeResult<()> {
        self.call("set_push_to_deploy", format!("site={site} enabled={enabled}"), |s| s.site(server, site).map(|_| ()))
    }

    async fn list_domains(&self, server: u64, site: u64) -> ForgeResult<Vec<DomainRecord>> {
        self.call("list_domains", format!("site={site}"), |s| {
            s.site(server, site)?;
            Ok(s.domains.values().filter(|(x, _)| *x == site).map(|(_, d)| d.clone()).collect())
        })
    }

    async fn create_domain(&self, server: u64, site: u64, req: &CreateDomain) -> ForgeResult<DomainRecord> {
        self.call("create_domain", format!("site={site} name={}", req.name), |s| {
            s.site(server, site)?;
            if s.domains.values().any(|(x, d)| *x == site && d.name == req.name && d.status != "removing") {
                return Err(taken("name"));
            }
            let id = s.id();
            let domain = DomainRecord {
                id,
                name: req.name.clone(),
                kind: "primary".into(),
                status: "enabled".into(),
                www_redirect_type: Some(req.www_redirect_type.clone()),
                allow_wildcard_subdomains: req.allow_wildcard_subdomains,
            };
            s.domains.insert(id, (site, domain.clone()));
            Ok(domain)
        })
    }

    async fn get_domain(&self, server: u64, site: u64, domain: u64) -> ForgeResult<DomainRecord> {
        self.call("get_domain", format!("site={site} domain={domain}"), |s| {
            s.site(server, site)?;
            match s.domains.get(&domain) {
                Some((x, d)) if *x == site => Ok(d.clone()),
                _ => Err(not_found(format!("domain {domain}"))),
            }
        })
    }

    async fn delete_domain(&self, server: u64, site: u64, domain: u64) -> ForgeResult<()> {
        self.call("delete_domain", format!("site={site} domain={domain}"), |s| {
            s.site(server, site)?;
            if s.domains.get(&domain).is_none_or(|(x, _)| *x != site) {
                return Err(not_found(format!("domain {domain}")));
            }
            match removal(s, "removing") {
                Some(status) => s.domains.get_mut(&domain).into_iter().for_each(|(_, d)| d.status = status.into()),
                None => drop(s.domains.remove(&domain)),
            }
            Ok(())
        })
    }

    async fn request_certificate(
        &self,
        server: u64,
        site: u64,
        domain: u64,
        req: &RequestCertificate,
    ) -> ForgeResult<Certificate> {
        self.call("request_certificate", format!("site={site} domain={domain} type={}", req.kind), |s| {
            s.site(server, site)?;
            if s.domains.get(&domain).is_none_or(|(x, _)| *x != site) {
                return Err(not_found(format!("domain {domain}")));
            }
            let id = s.id();
            let status = s.knobs.certificate_status;
            let cert = Certificate {
                id,
                kind: req.kind.clone(),
                request_status: Some("created".into()),
                status: status.into(),
                active: status == "installed",
                ..Default::default()
            };
            s.certificates.insert(id, (site, domain, cert.clone()));
            Ok(cert)
        })
    }

    async fn list_certificates(&self, server: u64, site: u64, domain: Option<u64>) -> ForgeResult<Vec<Certificate>> {
        self.call("list_certificates", format!("site={site} domain={domain:?}"), |s| {
            s.site(server, site)?;
            let of = |x: &u64, d: &u64| *x == site && domain.is_none_or(|want| want == *d);
            Ok(s.certificates.values().filter(|(x, d, _)| of(x, d)).map(|(_, _, c)| c.clone()).collect())
        })
    }

    async fn active_certificate(&self, server: u64, site: u64, domain: u64) -> ForgeResult<Option<Certificate>> {
        self.call("active_certificate", format!("site={site} domain={domain}"), |s| {
            s.site(server, site)?;
            let active = s.certificates.values().find(|(x, d, c)| *x == site && *d == domain && c.is_active());
            Ok(active.map(|(_, _, c)| c.clone()))
        })
    }

    async fn get_certificate(&self, server: u64, site: u64, domain: u64, certificate: u64) -> ForgeResult<Certificate> {
        self.call("get_certificate", format!("site={site} domain={domain} certificate={certificate}"), |s| {
            s.site(server, site)?;
            match s.certificates.get(&certificate) {
                Some((x, d, c)) if *x == site && *d == domain => Ok(c.clone()),
                _ => Err(not_found(format!("certificate {certificate}"))),
            }
        })
    }

    async fn delete_certificate(&self, server: u64, site: u64, domain: u64, certificate: u64) -> ForgeResult<()> {
        self.call("delete_certificate", format!("site={site} domain={domain} certificate={certificate}"), |s| {
            s.site(server, site)?;
            if !s.certificates.get(&certificate).is_some_and(|(x, d, _)| *x == site && *d == domain) {
                return Err(not_found(format!("certificate {certificate}")));
            }
            match removal(s, "deleting") {
                Some(status) => s.certificates.get_mut(&certificate).into_iter().for_each(|(_, _, c)| {
                    c.status = status.into();
                    c.active = false;
                }),
                None => drop(s.certificates.remove(&certificate)),
            }
            Ok(())
        })
    }

    async fn list_databases(&self, server: u64, name: Option<&str>) -> ForgeResult<Vec<Database>> {
        self.call("list_databases", format!("name={name:?}"), |s| {
            check_server(server)?;
            Ok(s.databases.values().filter(|d| matches(&d.name, name)).cloned().collect())
        })
    }

    async fn create_database(&self, server: u64, req: &CreateDatabase) -> ForgeResult<Database> {
        self.call("create_database", format!("name={}", req.name), |s| {
            check_server(server)?;
            if s.databases.values().any(|d| d.name == req.name) {
                return Err(taken("name"));
            }
            let id = s.id();
            let database = Database { id, name: req.name.clone(), status: s.knobs.database_status.into() };
            s.databases.insert(id, database.clone());
            Ok(database)
        })
    }

    async fn get_database(&self, server: u64, database: u64) -> ForgeResult<Database> {
        self.call("get_database", format!("database={database}"), |s| {
            check_server(server)?;
            s.databases.get(&database).cloned().ok_or_else(|| not_found(format!("database {database}")))
        })
    }

    async fn delete_database(&self, server: u64, database: u64) -> ForgeResult<()> {
        self.call("delete_database", format!("database={database}"), |s| {
            check_server(server)?;
            if !s.databases.contains_key(&database) {
                return Err(not_found(format!("database {database}")));
            }
            match removal(s, "removing") {
                Some(status) => s.databases.get_mut(&database).into_iter().for_each(|d| d.status = status.into()),
                None => drop(s.databases.remove(&database)),
            }
            Ok(())
        })
    }

    async fn list_database_users(&self, server: u64, name: Option<&str>) -> ForgeResult<Vec<DatabaseUser>> {
        self.call("list_database_users", format!("name={name:?}"), |s| {
            check_server(server)?;
            Ok(s.users.values().filter(|(u, _)| matches(&u.name, name)).map(|(u, _)| u.clone()).collect())
        })
    }

    async fn create_database_user(&self, server: u64, req: &CreateDatabaseUser) -> ForgeResult<DatabaseUser> {
        self.call("create_database_user", format!("name={} databases={:?}", req.name, req.database_ids), |s| {
            check_server(server)?;
            if s.users.values().any(|(u, _)| u.name == req.name) {
                return Err(taken("name"));
            }
            let id = s.id();
            let user = DatabaseUser { id, name: req.name.clone(), status: s.knobs.user_status.into() };
            s.users.insert(id, (user.clone(), req.database_ids.clone()));
            Ok(user)
        })
    }

    async fn get_database_user(&self, server: u64, user: u64) -> ForgeResult<DatabaseUser> {
        self.call("get_database_user", format!("user={user}"), |s| {
            check_server(server)?;
            s.users.get(&user).map(|(u, _)| u.clone()).ok_or_else(|| not_found(format!("database user {user}")))
        })
    }

    async fn update_database_user(&self, server: u64, user: u64, req: &UpdateDatabaseUser) -> ForgeResult<()> {
        self.call("update_database_user", format!("user={user} databases={:?}", req.database_ids), |s| {
            check_server(server)?;
            let (_, grants) = s.users.get_mut(&user).ok_or_else(|| not_found(format!("database user {user}")))?;
            if let Some(ids) = &req.database_ids {
                *grants = ids.clone();
            }
            Ok(())
        })
    }

    async fn delete_database_user(&self, server: u64, user: u64) -> ForgeResult<()> {
        self.call("delete_database_user", format!("user={user}"), |s| {
            check_server(server)?;
            if !s.users.contains_key(&user) {
                return Err(not_found(format!("database user {user}")));
            }
            match removal(s, "removing") {
                Some(status) => s.users.get_mut(&user).into_iter().for_each(|(u, _)| u.status = status.into()),
                None => drop(s.users.remove(&user)),
            }
            Ok(())
        })
    }

    async fn list_background_processes(
        &self,
        server: u64,
        site_id: Option<u64>,
    ) -> ForgeResult<Vec<BackgroundProcess>> {
        self.call("list_background_processes", format!("site={site_id:?}"), |s| {
            check_server(server)?;
            let of = |x: &Option<u64>| site_id.is_none() || *x == site_id;
            Ok(s.processes.values().filter(|(x, _)| of(x)).map(|(_, p)| p.clone()).collect())
        })
    }

    async fn create_background_process(
        &self,
        server: u64,
        req: &CreateBackgroundProcess,
    ) -> ForgeResult<BackgroundProcess> {
        self.call("create_background_process", format!("site={:?} command={}", req.site_id, req.command), |s| {
            check_server(server)?;
            if let Some(site) = req.site_id {
                s.site(server, site)?;
            }
            let id = s.id();
            let process = BackgroundProcess {
                id,
                command: req.command.clone(),
                user: req.user.clone(),
                directory: req.directory.clone(),
                processes: i64::from(req.processes),
                status: s.knobs.worker_status.into(),
            };
            s.processes.insert(id, (req.site_id, process.clone()));
            Ok(process)
        })
    }

    async fn get_background_process(&self, server: u64, process: u64) -> ForgeResult<BackgroundProcess> {
        self.call("get_background_process", format!("process={process}"), |s| {
            check_server(server)?;
            s.processes.get(&process).map(|(_, p)| p.clone()).ok_or_else(|| not_found(format!("process {process}")))
        })
    }

    async fn update_background_process(
        &self,
        server: u64,
        process: u64,
        _req: &UpdateBackgroundProcess,
    ) -> ForgeResult<()> {
        self.call("update_background_process", format!("process={process}"), |s| {
            check_server(server)?;
            s.processes.get(&process).map(|_| ()).ok_or_else(|| not_found(format!("process {process}")))
        })
    }

    async fn delete_background_process(&self, server: u64, process: u64) -> ForgeResult<()> {
        self.call("delete_background_process", format!("process={process}"), |s| {
            check_server(server)?;
            if !s.processes.contains_key(&process) {
                return Err(not_found(format!("process {process}")));
            }
            match removal(s, "removing") {
                Some(status) => s.processes.get_mut(&process).into_iter().for_each(|(_, p)| p.status = status.into()),
                None => drop(s.processes.remove(&process)),
            }
            Ok(())
        })
    }

    /// Forge answers 202 without a body: the id is `None`.
    async fn run_site_command(&self, server: u64, site: u64, command: &str) -> ForgeResult<Option<u64>> {
        self.call("run_site_command", format!("site={site} command={command}"), |s| {
            s.site(server, site)?;
            let id = s.id();
            let status = s.knobs.command_status.into();
            s.commands.insert(id, (site, SiteCommand { id, command: command.into(), status, ..Default::default() }));
            Ok(None)
        })
    }

    async fn list_site_commands(
        &self,
        server: u64,
        site: u64,
        command: Option<&str>,
        limit: Option<usize>,
    ) -> ForgeResult<Vec<SiteCommand>> {
        self.call("list_site_commands", format!("site={site} limit={limit:?}"), |s| {
            s.site(server, site)?;
            let newest_first = s.commands.values().rev().filter(|(x, c)| *x == site && matches(&c.command, command));
            Ok(newest_first.map(|(_, c)| c.clone()).take(limit.unwrap_or(usize::MAX)).collect())
        })
    }

    async fn get_site_command(&self, server: u64, site: u64, command: u64) -> ForgeResult<SiteCommand> {
        self.call("get_site_command", format!("site={site} command={command}"), |s| {
            s.site(server, site)?;
            match s.commands.get(&command) {
                Some((x, c)) if *x == site => Ok(c.clone()),
                _ => Err(not_found(format!("command {command}"))),
            }
        })
    }

    async fn site_command_output(&self, server: u64, site: u64, command: u64) -> ForgeResult<String> {
        self.call("site_command_output", format!("site={site} command={command}"), |s| {
            s.site(server, site).map(|_| String::new())
        })
    }

    async fn list_scheduled_jobs(&self, _scope: JobScope) -> ForgeResult<Vec<ScheduledJob>> {
        self.call("list_scheduled_jobs", String::new(), |_| Ok(Vec::new()))
    }

    async fn create_scheduled_job(&self, _scope: JobScope, _req: &CreateScheduledJob) -> ForgeResult<ScheduledJob> {
        self.call("create_scheduled_job", String::new(), |_| Err(not_found("scheduled jobs (not simulated)")))
    }

    async fn get_scheduled_job(&self, _scope: JobScope, job: u64) -> ForgeResult<ScheduledJob> {
        self.call("get_scheduled_job", format!("job={job}"), |_| Err(not_found(format!("scheduled job {job}"))))
    }

    async fn delete_scheduled_job(&self, _scope: JobScope, job: u64) -> ForgeResult<()> {
        self.call("delete_scheduled_job", format!("job={job}"), |_| Err(not_found(format!("scheduled job {job}"))))
    }
}
