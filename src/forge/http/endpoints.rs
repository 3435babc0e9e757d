//! The [`ForgeApi`] operations over HTTP: each builds its [`Call`] (path, query, body,
//! whether it may be replayed) and decodes the answer.

use super::HttpForgeClient;
use super::documents::typed;
use super::request::Call;
use crate::forge::api::{ForgeApi, ForgeResult};
use crate::forge::error::ForgeError;
use crate::forge::jsonapi::{self, Included};
use crate::forge::models::*;
use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

fn site_from(obj: &Value, included: &Included) -> ForgeResult<Site> {
    let r = jsonapi::resource::<Site>(obj)?;
    let mut site = r.attributes;
    site.id = r.id;
    site.tags = included.tag_names(&r.relationships);
    site.server_id = jsonapi::parse_id(&r.relationships["server"]["data"]["id"]);
    Ok(site)
}

macro_rules! with_id {
    ($t:ty) => {
        |v: &Value, _: &Included| -> ForgeResult<$t> { Ok(typed(jsonapi::resource::<$t>(v)?, |a, id| a.id = id)) }
    };
}

fn name_filter(name: Option<&str>) -> Vec<(String, String)> {
    name.map(|n| vec![("filter[name]".to_string(), n.to_string())]).unwrap_or_default()
}

#[async_trait]
impl ForgeApi for HttpForgeClient {
    async fn current_user(&self) -> ForgeResult<User> {
        let doc = self.doc(Call::get("/me".into())).await?;
        let r = jsonapi::single::<UserAttributes>(&doc)?;
        Ok(User { id: r.id, name: r.attributes.name, email: r.attributes.email })
    }

    async fn get_organization(&self) -> ForgeResult<Organization> {
        let doc = self.doc(Call::get(self.org(""))).await?;
        let r = jsonapi::single::<OrganizationAttributes>(&doc)?;
        Ok(Organization { id: r.id, name: r.attributes.name, slug: r.attributes.slug })
    }

    async fn list_servers(&self) -> ForgeResult<Vec<Server>> {
        self.list(self.org("/servers"), vec![], None, with_id!(Server)).await
    }

    async fn get_server(&self, server: u64) -> ForgeResult<Server> {
        self.one(Call::get(self.server_path(server, "")), |s: &mut Server, id| s.id = id).await
    }

    async fn list_sites(&self, name: Option<&str>) -> ForgeResult<Vec<Site>> {
        let mut q = name_filter(name);
        q.push(("include".into(), "tags,server".into()));
        self.list(self.org("/sites"), q, None, site_from).await
    }

    async fn list_server_sites(&self, server: u64, name: Option<&str>) -> ForgeResult<Vec<Site>> {
        let mut q = name_filter(name);
        q.push(("include".into(), "tags".into()));
        let mut sites = self.list(self.server_path(server, "/sites"), q, None, site_from).await?;
        for s in &mut sites {
            s.server_id.get_or_insert(server);
        }
        Ok(sites)
    }

    async fn get_site(&self, site: u64) -> ForgeResult<Site> {
        // The document declares no `include` here: no tags, no server relationship.
        let doc = self.doc(Call::get(self.org(&format!("/sites/{site}")))).await?;
        site_from(&doc["data"], &Included::from_doc(&doc))
    }

    async fn create_site(&self, server: u64, req: &CreateSite) -> ForgeResult<Site> {
        let doc = self.doc(Call::send(Method::POST, self.server_path(server, "/sites"), Some(req))).await?;
        let mut site = site_from(&doc["data"], &Included::from_doc(&doc))?;
        site.server_id.get_or_insert(server);
        Ok(site)
    }

    async fn update_site(&self, server: u64, site: u64, req: &UpdateSite) -> ForgeResult<()> {
        self.send(Call::send(Method::PUT, self.site_path(server, site, ""), Some(req))).await.map(drop)
    }

    async fn delete_site(&self, server: u64, site: u64) -> ForgeResult<()> {
        self.send(Call::send::<()>(Method::DELETE, self.site_path(server, site, ""), None)).await.map(drop)
    }

    async fn get_environment(&self, server: u64, site: u64) -> ForgeResult<String> {
        #[derive(serde::Deserialize, Default)]
        struct Env {
            #[serde(default)]
            content: Option<String>,
        }
        let doc = self.doc(Call::get(self.site_path(server, site, "/environment"))).await?;
        Ok(jsonapi::attributes::<Env>(&doc)?.content.unwrap_or_default())
    }

    async fn put_environment(&self, server: u64, site: u64, req: &PutEnvironment) -> ForgeResult<()> {
        self.send(Call::send(Method::PUT, self.site_path(server, site, "/environment"), Some(req))).await.map(drop)
    }

    async fn trigger_deployment(&self, server: u64, site: u64) -> ForgeResult<Deployment> {
        let call = Call::send::<()>(Method::POST, self.site_path(server, site, "/deployments"), None);
        self.one(call, |d: &mut Deployment, id| d.id = id).await
    }

    async fn list_deployments(&self, server: u64, site: u64, limit: Option<usize>) -> ForgeResult<Vec<Deployment>> {
        let q = vec![("sort".to_string(), "-created_at".to_string())];
        self.list(self.site_path(server, site, "/deployments"), q, limit, with_id!(Deployment)).await
    }

    async fn get_deployment(&self, server: u64, site: u64, deployment: u64) -> ForgeResult<Deployment> {
        self.one(
            Call::get(self.site_path(server, site, &format!("/deployments/{deployment}"))),
            |d: &mut Deployment, id| d.id = id,
        )
        .await
    }

    async fn deployment_status(&self, server: u64, site: u64) -> ForgeResult<CurrentDeployment> {
        let doc = self.doc(Call::get(self.site_path(server, site, "/deployments/status"))).await?;
        jsonapi::attributes(&doc)
    }

    async fn deployment_log(&self, server: u64, site: u64, deployment: u64) -> ForgeResult<String> {
        #[derive(serde::Deserialize, Default)]
        struct Out {
            #[serde(default)]
            output: Option<String>,
        }
        let doc = self.doc(Call::get(self.site_path(server, site, &format!("/deployments/{deployment}/log")))).await?;
        Ok(jsonapi::attributes::<Out>(&doc)?.output.unwrap_or_default())
    }

    async fn get_deployment_script(&self, server: u64, site: u64) -> ForgeResult<DeploymentScript> {
        let doc = self.doc(Call::get(self.site_path(server, site, "/deployments/script"))).await?;
        jsonapi::attributes(&doc)
    }

    async fn put_deployment_script(
        &self,
        server: u64,
        site: u64,
        content: &str,
        auto_source: Option<bool>,
    ) -> ForgeResult<DeploymentScript> {
        let mut body = json!({"content": content});
        if let Some(a) = auto_source {
            body["auto_source"] = json!(a);
        }
        let doc =
            self.doc(Call::send(Method::PUT, self.site_path(server, site, "/deployments/script"), Some(&body))).await?;
        jsonapi::attributes(&doc)
    }

    async fn set_push_to_deploy(&self, server: u64, site: u64, enabled: bool) -> ForgeResult<()> {
        let path = self.site_path(server, site, "/deployments/push-to-deploy");
        let call = if enabled { Call::idempotent_post(path) } else { Call::send::<()>(Method::DELETE, path, None) };
        self.send(call).await.map(drop)
    }

    async fn list_domains(&self, server: u64, site: u64) -> ForgeResult<Vec<DomainRecord>> {
        self.list(self.site_path(server, site, "/domains"), vec![], None, with_id!(DomainRecord)).await
    }

    async fn create_domain(&self, server: u64, site: u64, req: &CreateDomain) -> ForgeResult<DomainRecord> {
        self.one(
            Call::send(Method::POST, self.site_path(server, site, "/domains"), Some(req)),
            |d: &mut DomainRecord, id| d.id = id,
        )
        .await
    }

    async fn get_domain(&self, server: u64, site: u64, domain: u64) -> ForgeResult<DomainRecord> {
        self.one(Call::get(self.site_path(server, site, &format!("/domains/{domain}"))), |d: &mut DomainRecord, id| {
            d.id = id
        })
        .await
    }

    async fn delete_domain(&self, server: u64, site: u64, domain: u64) -> ForgeResult<()> {
        self.send(Call::send::<()>(Method::DELETE, self.site_path(server, site, &format!("/domains/{domain}")), None))
            .await
            .map(drop)
    }

    async fn request_certificate(
        &self,
        server: u64,
        site: u64,
        domain: u64,
        req: &RequestCertificate,
    ) -> ForgeResult<Certificate> {
        let call = Call::send(
            Method::POST,
            self.site_path(server, site, &format!("/domains/{domain}/certificates")),
            Some(req),
        );
        self.one(call, |c: &mut Certificate, id| c.id = id).await
    }

    async fn list_certificates(&self, server: u64, site: u64, domain: Option<u64>) -> ForgeResult<Vec<Certificate>> {
        let path = match domain {
            Some(d) => self.site_path(server, site, &format!("/domains/{d}/certificates")),
            None => self.site_path(server, site, "/certificates"),
        };
        self.list_certificates_at(path).await
    }

    async fn active_certificate(&self, server: u64, site: u64, domain: u64) -> ForgeResult<Option<Certificate>> {
        match self
            .one(
                Call::get(self.site_path(server, site, &format!("/domains/{domain}/certificates/active"))),
                |c: &mut Certificate, id| c.id = id,
            )
            .await
        {
            Ok(c) => Ok(Some(c)),
            Err(ForgeError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_certificate(&self, server: u64, site: u64, domain: u64, certificate: u64) -> ForgeResult<Certificate> {
        let path = self.site_path(server, site, &format!("/domains/{domain}/certificates/{certificate}"));
        self.one(Call::get(path), |c: &mut Certificate, id| c.id = id).await
    }

    async fn delete_certificate(&self, server: u64, site: u64, domain: u64, certificate: u64) -> ForgeResult<()> {
        let path = self.site_path(server, site, &format!("/domains/{domain}/certificates/{certificate}"));
        self.send(Call::send::<()>(Method::DELETE, path, None)).await.map(drop)
    }

    async fn list_databases(&self, server: u64, name: Option<&str>) -> ForgeResult<Vec<Database>> {
        self.list(self.server_path(server, "/database/schemas"), name_filter(name), None, with_id!(Database)).await
    }

    async fn create_database(&self, server: u64, req: &CreateDatabase) -> ForgeResult<Database> {
        self.one(
            Call::send(Method::POST, self.server_path(server, "/database/schemas"), Some(req)),
            |d: &mut Database, id| d.id = id,
        )
        .await
    }

    async fn get_database(&self, server: u64, database: u64) -> ForgeResult<Database> {
        self.one(
            Call::get(self.server_path(server, &format!("/database/schemas/{database}"))),
            |d: &mut Database, id| d.id = id,
        )
        .await
    }

    async fn delete_database(&self, server: u64, database: u64) -> ForgeResult<()> {
        self.send(Call::send::<()>(
            Method::DELETE,
            self.server_path(server, &format!("/database/schemas/{database}")),
            None,
        ))
        .await
        .map(drop)
    }

    async fn list_database_users(&self, server: u64, name: Option<&str>) -> ForgeResult<Vec<DatabaseUser>> {
        self.list(self.server_path(server, "/database/users"), name_filter(name), None, with_id!(DatabaseUser)).await
    }

    async fn create_database_user(&self, server: u64, req: &CreateDatabaseUser) -> ForgeResult<DatabaseUser> {
        self.one(
            Call::send(Method::POST, self.server_path(server, "/database/users"), Some(req)),
            |u: &mut DatabaseUser, id| u.id = id,
        )
        .await
    }

    async fn get_database_user(&self, server: u64, user: u64) -> ForgeResult<DatabaseUser> {
        self.one(Call::get(self.server_path(server, &format!("/database/users/{user}"))), |u: &mut DatabaseUser, id| {
            u.id = id
        })
        .await
    }

    async fn update_database_user(&self, server: u64, user: u64, req: &UpdateDatabaseUser) -> ForgeResult<()> {
        self.send(Call::send(Method::PUT, self.server_path(server, &format!("/database/users/{user}")), Some(req)))
            .await
            .map(drop)
    }

    async fn delete_database_user(&self, server: u64, user: u64) -> ForgeResult<()> {
        self.send(Call::send::<()>(Method::DELETE, self.server_path(server, &format!("/database/users/{user}")), None))
            .await
            .map(drop)
    }

    async fn list_background_processes(
        &self,
        server: u64,
        site_id: Option<u64>,
    ) -> ForgeResult<Vec<BackgroundProcess>> {
        let q = site_id.map(|s| vec![("filter[site_id]".to_string(), s.to_string())]).unwrap_or_default();
        self.list(self.server_path(server, "/background-processes"), q, None, with_id!(BackgroundProcess)).await
    }

    async fn create_background_process(
        &self,
        server: u64,
        req: &CreateBackgroundProcess,
    ) -> ForgeResult<BackgroundProcess> {
        let call = Call::send(Method::POST, self.server_path(server, "/background-processes"), Some(req));
        self.one(call, |p: &mut BackgroundProcess, id| p.id = id).await
    }

    async fn get_background_process(&self, server: u64, process: u64) -> ForgeResult<BackgroundProcess> {
        self.one(
            Call::get(self.server_path(server, &format!("/background-processes/{process}"))),
            |p: &mut BackgroundProcess, id| p.id = id,
        )
        .await
    }

    async fn update_background_process(
        &self,
        server: u64,
        process: u64,
        req: &UpdateBackgroundProcess,
    ) -> ForgeResult<()> {
        self.send(Call::send(
            Method::PUT,
            self.server_path(server, &format!("/background-processes/{process}")),
            Some(req),
        ))
        .await
        .map(drop)
    }

    async fn delete_background_process(&self, server: u64, process: u64) -> ForgeResult<()> {
        self.send(Call::send::<()>(
            Method::DELETE,
            self.server_path(server, &format!("/background-processes/{process}")),
            None,
        ))
        .await
        .map(drop)
    }

    async fn run_site_command(&self, server: u64, site: u64, command: &str) -> ForgeResult<Option<u64>> {
        let body = json!({"command": command});
        let bytes = self.send(Call::send(Method::POST, self.site_path(server, site, "/commands"), Some(&body))).await?;
        // Usually 202 with no body; tolerate a body carrying the command (UNCERTAIN).
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        Ok(serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| jsonapi::parse_id(&v["data"]["id"])))
    }

    async fn list_site_commands(
        &self,
        server: u64,
        site: u64,
        command: Option<&str>,
        limit: Option<usize>,
    ) -> ForgeResult<Vec<SiteCommand>> {
        let mut q = vec![("sort".to_string(), "-created_at".to_string())];
        if let Some(c) = command {
            q.push(("filter[command]".into(), c.into()));
        }
        self.list(self.site_path(server, site, "/commands"), q, limit, with_id!(SiteCommand)).await
    }

    async fn get_site_command(&self, server: u64, site: u64, command: u64) -> ForgeResult<SiteCommand> {
        self.one(Call::get(self.site_path(server, site, &format!("/commands/{command}"))), |c: &mut SiteCommand, id| {
            c.id = id
        })
        .await
    }

    async fn site_command_output(&self, server: u64, site: u64, command: u64) -> ForgeResult<String> {
        #[derive(serde::Deserialize, Default)]
        struct Out {
            #[serde(default)]
            output: Option<String>,
        }
        let doc = self.doc(Call::get(self.site_path(server, site, &format!("/commands/{command}/output")))).await?;
        Ok(jsonapi::attributes::<Out>(&doc)?.output.unwrap_or_default())
    }

    async fn list_scheduled_jobs(&self, scope: JobScope) -> ForgeResult<Vec<ScheduledJob>> {
        self.list(self.job_path(scope, ""), vec![], None, with_id!(ScheduledJob)).await
    }

    async fn create_scheduled_job(&self, scope: JobScope, req: &CreateScheduledJob) -> ForgeResult<ScheduledJob> {
        self.one(Call::send(Method::POST, self.job_path(scope, ""), Some(req)), |j: &mut ScheduledJob, id| j.id = id)
            .await
    }

    async fn get_scheduled_job(&self, scope: JobScope, job: u64) -> ForgeResult<ScheduledJob> {
        self.one(Call::get(self.job_path(scope, &format!("/{job}"))), |j: &mut ScheduledJob, id| j.id = id).await
    }

    async fn delete_scheduled_job(&self, scope: JobScope, job: u64) -> ForgeResult<()> {
        self.send(Call::send::<()>(Method::DELETE, self.job_path(scope, &format!("/{job}")), None)).await.map(drop)
    }
}
