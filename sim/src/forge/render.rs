//! JSON:API rendering of the world: single-resource documents, cursor-paginated lists,
//! `include=` relationships. Status fields are computed from timestamps at render time.

use super::lifecycle::{self as lc};
use super::model::*;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Rendering context: where links point, the clock and the step durations.
pub struct Ctx {
    pub base: String,
    pub now: DateTime<Utc>,
    /// Step durations: `step` for everything without its own.
    pub timing: lc::Timing,
}

/// A resource object, plus what it contributes to `included`.
pub struct Rendered {
    pub data: Value,
    pub included: Vec<Value>,
}

impl From<Value> for Rendered {
    fn from(data: Value) -> Self {
        Rendered { data, included: vec![] }
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn tsn(t: Option<DateTime<Utc>>) -> Value {
    t.map(ts).map(Value::String).unwrap_or(Value::Null)
}

pub fn resource(ty: &str, id: u64, attributes: Value, href: Option<String>) -> Value {
    let mut v = json!({"id": id.to_string(), "type": ty, "attributes": attributes});
    if let Some(h) = href {
        v["links"] = json!({"self": {"href": h}});
    }
    v
}

/// `{data}` plus `included` when anything was included.
pub fn document(r: Rendered) -> Value {
    let mut doc = json!({"data": r.data});
    if !r.included.is_empty() {
        doc["included"] = Value::Array(dedupe(r.included));
    }
    doc
}

pub(super) fn dedupe(items: Vec<Value>) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    items.into_iter().filter(|v| seen.insert((v["type"].to_string(), v["id"].to_string()))).collect()
}

/// For operations whose document declares no `include` parameter: Forge's query builder
/// renders no relationships there whatever the query says.
pub const NO_INCLUDE: &[String] = &[];

/// Parsed `include=a,b`, for the operations that declare it.
pub fn includes(query: &HashMap<String, String>) -> Vec<String> {
    query
        .get("include")
        .map(|s| s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
        .unwrap_or_default()
}

impl Ctx {
    fn org_url(&self, org: &str) -> String {
        format!("{}/orgs/{org}", self.base)
    }

    pub fn user(&self, w: &World) -> Value {
        resource(
            "users",
            w.user_id,
            json!({"name": "Switchyard Sim", "email": "sim@switchyard.invalid", "created_at": ts(self.now), "updated_at": ts(self.now)}),
            Some(format!("{}/me", self.base)),
        )
    }

    pub fn organization(&self, o: &Organization) -> Value {
        resource(
            "organizations",
            o.id,
            json!({"name": o.name, "slug": o.slug, "created_at": ts(o.created_at), "updated_at": ts(o.created_at)}),
            Some(self.org_url(&o.slug)),
        )
    }

    fn tag(&self, t: &Tag) -> Value {
        json!({"id": t.id.to_string(), "type": "tags", "attributes": {"name": t.name, "created_at": ts(t.created_at), "updated_at": ts(t.created_at)}})
    }

    fn tag_relationship(&self, w: &World, ids: &[u64]) -> (Value, Vec<Value>) {
        let data: Vec<Value> = ids.iter().map(|id| json!({"type": "tags", "id": id.to_string()})).collect();
        let included = ids.iter().filter_map(|id| w.tags.get(id)).map(|t| self.tag(t)).collect();
        (json!({"data": data}), included)
    }

    pub fn server(&self, w: &World, s: &Server, include: &[String]) -> Rendered {
        let mut data = resource(
            "servers",
            s.id,
            json!({
                "id": s.id, "credential_id": null, "name": s.name, "slug": s.name, "type": "app",
                "ubuntu_version": "24.04", "ssh_port": 22, "provider": "custom", "identifier": null,
                // A custom-provider server has no provider size or region; the document requires strings.
                "size": "custom", "region": "custom", "php_version": s.php_version, "php_cli_version": s.php_version,
                "opcache_status": null, "database_type": s.database_type, "db_status": null, "redis_status": null,
                "ip_address": s.ip_address, "private_ip_address": s.private_ip_address, "revoked": false,
                "created_at": ts(s.created_at), "updated_at": ts(s.updated_at), "connection_status": "successful",
                "timezone": s.timezone, "local_public_key": null, "is_ready": true
            }),
            Some(format!("{}/servers/{}", self.org_url(&s.organization), s.id)),
        );
        let mut included = vec![];
        if include.iter().any(|i| i == "tags") {
            let (rel, inc) = self.tag_relationship(w, &s.tags);
            data["relationships"] = json!({"tags": rel});
            included = inc;
        }
        Rendered { data, included }
    }

    /// SiteStatus as the document enumerates it: an installed site reports its deployments
    /// (`deploying`, then `deployed`, or `failed` when the last one failed). Which of these live
    /// Forge shows when is not recorded; docs/forge-conformance.md says what the client assumes.
    fn site_status(&self, w: &World, s: &Site, running: Option<&str>) -> &'static str {
        let installed = lc::install_status(s.created_at, s.deleted_at, self.now, self.timing.site_install);
        if installed != "installed" {
            return installed;
        }
        if running.is_some() {
            return "deploying";
        }
        let last = w.deployments.values().rev().find(|d| d.site_id == s.id);
        match last.map(|d| lc::deployment_view(d.created_at, d.fails, self.now, self.timing.deploy_step).status) {
            Some("finished") => "deployed",
            Some(_) => "failed",
            None => "installed",
        }
    }

    pub fn site(&self, w: &World, s: &Site, include: &[String]) -> Rendered {
        let running = w.running_deployment(s.id, self.now, self.timing.deploy_step).map(|(_, v)| v.status);
        let status = self.site_status(w, s, running);
        let org = w.servers.get(&s.server_id).map(|srv| srv.organization.clone()).unwrap_or_default();
        let fresh = status == "installing";
        let url = if s.domain_mode == "on-forge" {
            format!("https://{}.on-forge.com", s.name)
        } else {
            format!("https://{}", s.name)
        };
        let repository = s.repository.as_ref().map(|r| {
            json!({"provider": r.provider, "url": r.url, "branch": r.branch, "status": lc::repository_status(s.created_at, self.now, &self.timing)})
        });
        let https = w
            .domains
            .values()
            .filter(|d| d.site_id == s.id)
            .any(|d| w.active_certificate(d.id, self.now, self.timing.certificate_step).is_some());
        let mut data = resource(
            "sites",
            s.id,
            json!({
                "name": s.name, "status": status, "url": url, "user": s.user, "https": https,
                "web_directory": s.web_directory, "root_directory": s.root_directory,
                // R2: fresh sites return these as null although the spec says required.
                "aliases": if fresh { Value::Null } else { json!([]) },
                "php_version": s.php_version, "deployment_status": running,
                "quick_deploy": s.quick_deploy, "isolated": s.isolated, "shared_paths": {},
                "repository": repository, "database": s.database_id.and_then(|d| w.databases.get(&d)).map(|d| d.name.clone()),
                "maintenance_mode": {"enabled": if fresh { Value::Null } else { json!(false) }, "status": null},
                "zero_downtime_deployments": s.zero_downtime_deployments,
                "deployment_retention": s.deployment_retention, "deployment_script": s.deployment_script,
                "wildcards": s.wildcards, "app_type": app_type(&s.site_type), "uses_envoyer": false,
                "deployment_url": format!("{}/deploy/{}/{}", self.base, s.id, s.deploy_hook_token),
                "healthcheck_url": null, "created_at": ts(s.created_at), "updated_at": ts(s.updated_at)
            }),
            Some(format!("{}/sites/{}", self.org_url(&org), s.id)),
        );
        let mut relationships = serde_json::Map::new();
        let mut included = vec![];
        for inc in include {
            match inc.as_str() {
                "tags" => {
                    let (rel, items) = self.tag_relationship(w, &s.tags);
                    relationships.insert("tags".into(), rel);
                    included.extend(items);
                }
                "server" => {
                    relationships
                        .insert("server".into(), json!({"data": {"type": "servers", "id": s.server_id.to_string()}}));
                    if let Some(srv) = w.servers.get(&s.server_id) {
                        included.push(self.server(w, srv, &[]).data);
                    }
                }
                "latestDeployment" => {
                    let latest = w.deployments.values().rev().find(|d| d.site_id == s.id);
                    relationships.insert(
                        "latestDeployment".into(),
                        json!({"data": latest.map(|d| json!({"type": "deployments", "id": d.id.to_string()}))}),
                    );
                    if let Some(d) = latest {
                        included.push(self.deployment(w, d));
                    }
                }
                "tagsCount" => {
                    data["attributes"]["tags_count"] = json!(s.tags.len());
                }
                _ => {}
            }
        }
        if !relationships.is_empty() {
            data["relationships"] = Value::Object(relationships);
        }
        Rendered { data, included }
    }

    fn site_url(&self, w: &World, site_id: u64) -> String {
        let (org, server) = w
            .sites
            .get(&site_id)
            .and_then(|s| w.servers.get(&s.server_id))
            .map(|srv| (srv.organization.clone(), srv.id))
            .unwrap_or_default();
        format!("{}/servers/{server}/sites/{site_id}", self.org_url(&org))
    }

    fn server_url(&self, w: &World, server_id: u64) -> String {
        let org = w.servers.get(&server_id).map(|s| s.organization.clone()).unwrap_or_default();
        format!("{}/servers/{server_id}", self.org_url(&org))
    }

    pub fn environment(&self, w: &World, s: &Site) -> Value {
        resource(
            "environments",
            s.id,
            json!({"content": s.environment}),
            Some(format!("{}/environment", self.site_url(w, s.id))),
        )
    }

    pub fn deployment(&self, w: &World, d: &Deployment) -> Value {
        let view = lc::deployment_view(d.created_at, d.fails, self.now, self.timing.deploy_step);
        // SPEC: Deployment requires only id and type; links are present here anyway.
        resource(
            "deployments",
            d.id,
            json!({
                "commit": {"hash": d.commit_hash, "author": d.commit_author, "message": d.commit_message, "branch": d.branch},
                "type": d.kind, "status": view.status, "started_at": tsn(view.started_at), "ended_at": tsn(view.ended_at),
                "created_at": ts(d.created_at), "updated_at": ts(view.ended_at.or(view.started_at).unwrap_or(d.created_at))
            }),
            Some(format!("{}/deployments/{}", self.site_url(w, d.site_id), d.id)),
        )
    }

    pub fn deployment_log(&self, w: &World, d: &Deployment) -> Value {
        let view = lc::deployment_view(d.created_at, d.fails, self.now, self.timing.deploy_step);
        let mut output = String::new();
        if view.started_at.is_some() {
            output.push_str(&format!("Deploying {}\n", d.commit_hash.clone().unwrap_or_default()));
        }
        match view.status {
            "finished" => output.push_str("Deployment finished.\n"),
            "failed" => output.push_str("Deployment failed: script exited with code 1.\n"),
            _ => {}
        }
        let url = format!("{}/deployments/{}/log", self.site_url(w, d.site_id), d.id);
        json!({"data": resource("deploymentOutputs", d.id, json!({"output": output}), Some(url))})
    }

    pub fn deployment_status(&self, w: &World, site: &Site) -> Value {
        let running = w.running_deployment(site.id, self.now, self.timing.deploy_step);
        let attributes = json!({
            "status": running.as_ref().map(|(_, v)| v.status),
            "started_at": running.and_then(|(_, v)| v.started_at).map(ts)
        });
        let url = format!("{}/deployments/status", self.site_url(w, site.id));
        json!({"data": resource("deploymentStatuses", site.id, attributes, Some(url))})
    }

    pub fn deployment_script(&self, w: &World, s: &Site) -> Value {
        resource(
            "deploymentScripts",
            s.id,
            json!({"content": s.deployment_script, "auto_source": s.auto_source}),
            Some(format!("{}/deployments/script", self.site_url(w, s.id))),
        )
    }

    pub fn deploy_hook(&self, s: &Site) -> Value {
        json!({"data": {"id": s.id.to_string(), "type": "deployHooks", "attributes": {"url": format!("{}/deploy/{}/{}", self.base, s.id, s.deploy_hook_token)}}})
    }

    pub fn domain(&self, w: &World, d: &Domain) -> Value {
        resource(
            "domainRecords",
            d.id,
            json!({
                "name": d.name, "type": if d.primary { "primary" } else { "alias" },
                "status": lc::domain_status(d.created_at, d.deleted_at, self.now, self.timing.step),
                "www_redirect_type": d.www_redirect_type, "allow_wildcard_subdomains": d.allow_wildcard_subdomains,
                "created_at": ts(d.created_at), "updated_at": ts(d.updated_at)
            }),
            Some(format!("{}/domains/{}", self.site_url(w, d.site_id), d.id)),
        )
    }

    pub fn certificate(&self, w: &World, c: &Certificate) -> Value {
        let view = lc::certificate_view(c.created_at, c.fails, c.deleted_at, self.now, self.timing.certificate_step);
        let active =
            w.active_certificate(c.domain_id, self.now, self.timing.certificate_step).is_some_and(|a| a.id == c.id);
        // SPEC: Certificate requires only id and type; omit links like the spec allows.
        resource(
            "certificates",
            c.id,
            json!({
                "type": c.cert_type, "verification_method": c.verification_method, "key_type": c.key_type,
                "preferred_chain": c.preferred_chain, "request_status": view.request_status, "status": view.status,
                "active": active, "domain_record_id": c.domain_id,
                "created_at": ts(c.created_at), "updated_at": ts(c.created_at)
            }),
            None,
        )
    }

    pub fn database(&self, w: &World, d: &Database) -> Value {
        resource(
            "databases",
            d.id,
            json!({"name": d.name, "status": lc::install_status(d.created_at, d.deleted_at, self.now, self.timing.step),
                   "created_at": ts(d.created_at), "updated_at": ts(d.created_at)}),
            Some(format!("{}/database/schemas/{}", self.server_url(w, d.server_id), d.id)),
        )
    }

    pub fn database_user(&self, w: &World, u: &DatabaseUser) -> Value {
        resource(
            "databaseUsers",
            u.id,
            json!({"name": u.name, "status": lc::database_user_status(u.created_at, u.updated_at, u.deleted_at, self.now, self.timing.step),
                   "created_at": ts(u.created_at), "updated_at": ts(u.updated_at.unwrap_or(u.created_at))}),
            Some(format!("{}/database/users/{}", self.server_url(w, u.server_id), u.id)),
        )
    }

    pub fn background_process(&self, p: &BackgroundProcess) -> Value {
        let mut status = lc::install_status(p.created_at, p.deleted_at, self.now, self.timing.step);
        if status == "installed"
            && p.updated_at.is_some_and(|u| lc::steps_elapsed(u, self.now, self.timing.step, 1) == 0)
        {
            status = "restarting";
        }
        // R2 #26: no name, site_id or updated_at in the resource.
        resource(
            "backgroundProcesses",
            p.id,
            json!({"command": p.command, "user": p.user, "directory": p.directory, "processes": p.processes,
                   "status": status, "created_at": ts(p.created_at)}),
            None,
        )
    }

    pub fn job(&self, w: &World, j: &ScheduledJob) -> Value {
        let url = match j.site_id {
            Some(site) => format!("{}/scheduled-jobs/{}", self.site_url(w, site), j.id),
            None => format!("{}/scheduled-jobs/{}", self.server_url(w, j.server_id), j.id),
        };
        resource(
            "scheduledJobs",
            j.id,
            json!({"name": j.name, "command": j.command, "status": lc::install_status(j.created_at, j.deleted_at, self.now, self.timing.step),
                   "user": j.user, "frequency": j.frequency, "cron": j.cron,
                   // The document requires a time; the start of the next minute stands in for the cron's next run.
                   "next_run_time": ts(self.now + chrono::Duration::seconds(60 - self.now.timestamp() % 60)),
                   "created_at": ts(j.created_at), "updated_at": ts(j.created_at)}),
            Some(url),
        )
    }

    pub fn command(&self, w: &World, c: &SiteCommand) -> Value {
        let status = lc::command_status(c.created_at, c.fails, self.now, self.timing.step);
        let done = matches!(status, "finished" | "failed");
        let mut v = resource(
            "commands",
            c.id,
            json!({"command": c.command, "status": status,
                   "exit_code": if done { json!(if c.fails { 1 } else { 0 }) } else { Value::Null },
                   "error_output": if done && c.fails { json!("command failed") } else { Value::Null },
                   // The document types duration as a string ("5m"); before a command ends it has run 0s.
                   "duration": "0s",
                   "user_id": c.user_id, "created_at": ts(c.created_at), "updated_at": ts(c.created_at)}),
            Some(format!("{}/commands/{}", self.site_url(w, c.site_id), c.id)),
        );
        v["relationships"] = json!({"user": {"data": {"type": "users", "id": c.user_id.to_string()}}});
        v
    }

    pub fn command_output(&self, w: &World, c: &SiteCommand) -> Value {
        let status = lc::command_status(c.created_at, c.fails, self.now, self.timing.step);
        let output = match status {
            "finished" => format!("$ {}\nDone.\n", c.command),
            "failed" => format!("$ {}\nexit status 1\n", c.command),
            "running" => format!("$ {}\n", c.command),
            _ => String::new(),
        };
        let url = format!("{}/commands/{}/output", self.site_url(w, c.site_id), c.id);
        json!({"data": resource("commandOutputs", c.id, json!({"output": output}), Some(url))})
    }

    pub fn job_output(&self, j: &ScheduledJob) -> Value {
        json!({"data": {"id": j.id.to_string(), "type": "jobOutputs", "attributes": {"output": ""}}})
    }
}

fn app_type(site_type: &str) -> &'static str {
    match site_type {
        "laravel" => "Laravel",
        "symfony" => "Symfony",
        "statamic" => "Statamic",
        "wordpress" => "WordPress",
        "phpmyadmin" => "phpMyAdmin",
        "php" => "PHP",
        "nextjs" => "Next.js",
        "nuxtjs" => "Nuxt.js",
        "static-html" => "Static HTML",
        _ => "Custom",
    }
}
