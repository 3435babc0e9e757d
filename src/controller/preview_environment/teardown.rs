//! Deleting an environment: workers, certificates, site, database user and schema
//! (Forge keeps the database when a site goes), then the Redis claim (which
//! `FLUSHDB`s). The finalizer stays until Forge confirms each object is gone, so
//! an unreachable Forge delays the deletion instead of leaking. Only what is
//! provably this environment's is deleted: a site with its owner tag, database
//! names it recorded in status before creating them.
//!
//! Teardown acts on the Forge API, organization and server recorded in status
//! (`status.target`) at the first reconcile, never on what the class says now.
//!
//! With `deletionPolicy: Orphan` nothing remote is touched; an Event names what was left.

use kube::runtime::controller::Action;

use super::cluster::Cluster;
use super::pass::owner_tag;
use super::{PreviewContext, inputs};
use crate::api::DeletionPolicy;
use crate::api::preview_environment::PreviewEnvironment;
use crate::controller::{Error, kit};
use crate::forge::ensure;
use crate::forge::{ForgeApi, going_away};
use crate::logic::gating::Gate;
use crate::logic::preview::Names;

pub async fn run(env: &PreviewEnvironment, pctx: &PreviewContext) -> Result<Action, Error> {
    if env.spec.deletion_policy == DeletionPolicy::Orphan {
        let status = env.status.clone().unwrap_or_default();
        let note = format!(
            "deletionPolicy Orphan: left site {:?} ({}), database {:?}, user {:?} and {} worker(s) on Forge",
            status.site_id,
            status.domain.unwrap_or_default(),
            status.database_name,
            status.database_user,
            status.worker_ids.len()
        );
        pctx.event(env, false, "Orphaned", "Delete", note).await;
        pctx.release_redis(env).await?;
        return Ok(Action::await_change());
    }
    // Without a forge section nothing can have been created on Forge.
    if pctx.ctx.config.forge.is_none() {
        pctx.release_redis(env).await?;
        return Ok(Action::await_change());
    }
    // Dependents in the stack go first.
    if let Gate::Wait(wait) = pctx.delete_gate(env).await? {
        return Err(Error::Waiting(format!("not deleting yet: {}", wait.message)));
    }
    // Only where the environment recorded acting, with that class's token: a class
    // changed since (another server, organization) does not redirect the teardown.
    let (forge, target) = match inputs::for_teardown(env, pctx).await {
        Ok(Some(found)) => found,
        // Nothing recorded: the environment never acted on Forge.
        Ok(None) => {
            pctx.release_redis(env).await?;
            return Ok(Action::await_change());
        }
        // Without a token nothing can be deleted: keep the finalizer and say why.
        Err(Error::Invalid { reason, message }) => {
            pctx.event(env, true, reason, "Delete", format!("cannot tear down yet: {message}")).await;
            return Err(Error::Waiting(message));
        }
        Err(e) => return Err(e),
    };
    let names = recorded_names(env).map_err(|e| Error::invalid("InvalidName", e.to_string()))?;
    tear_down(env, pctx, forge.as_ref(), u64::try_from(target.server_id).unwrap_or(0), &names).await
}

/// The names the environment acted under, from what its status recorded (the
/// domain) and what never changes (repository, pull request, project).
fn recorded_names(env: &PreviewEnvironment) -> Result<Names, crate::logic::preview::NameError> {
    let mut spec = env.spec.clone();
    if let Some(domain) = env.status.as_ref().and_then(|s| s.domain.clone()) {
        spec.domain = Some(domain);
        spec.domain_template = None;
    }
    Names::derive(&spec, Some("unrecorded.invalid"))
}

/// Removes the remote objects and, once Forge shows none of them, the Redis claim.
pub async fn tear_down(
    env: &PreviewEnvironment,
    cluster: &dyn Cluster,
    forge: &dyn ForgeApi,
    server: u64,
    names: &Names,
) -> Result<Action, Error> {
    let remaining = remove_remote(env, forge, server, names).await?;
    if !remaining.is_empty() {
        return Err(Error::Waiting(format!("waiting for Forge to remove {}", remaining.join(", "))));
    }
    cluster.release_redis(env).await?;
    cluster.event(env, false, "TornDown", "Delete", format!("removed {} from Forge", names.domain)).await;
    Ok(Action::await_change())
}

/// Issues every delete that is still needed and returns what Forge still shows.
async fn remove_remote(
    env: &PreviewEnvironment,
    forge: &dyn ForgeApi,
    server: u64,
    names: &Names,
) -> Result<Vec<String>, Error> {
    let mut remaining = Vec::new();
    let tag = owner_tag(env);
    let site = ensure::find_site(forge, server, &names.domain).await?;
    // Only a site this object created is ours to delete.
    if let Some(site) = site.filter(|s| s.tags.contains(&tag)) {
        if !going_away(&site.status) {
            for process in forge.list_background_processes(server, Some(site.id)).await? {
                if !going_away(&process.status) {
                    kit::forge_gone(forge.delete_background_process(server, process.id).await)?;
                }
            }
            let domain = env.status.as_ref().and_then(|s| s.domain_id).map(|d| d as u64);
            for cert in forge.list_certificates(server, site.id, None).await? {
                if let Some(domain) = domain.filter(|_| !going_away(&cert.status)) {
                    kit::forge_gone(forge.delete_certificate(server, site.id, domain, cert.id).await)?;
                }
            }
            kit::forge_gone(forge.delete_site(server, site.id).await)?;
        }
        remaining.push(format!("site {}", names.domain));
    }
    // Only the names this object claimed before creating them (`claim_database_names`).
    if let Some(status) = env.status.as_ref().filter(|s| s.database_name.is_some()) {
        let database = status.database_name.as_deref().unwrap_or(&names.database);
        let user = status.database_user.as_deref().unwrap_or(&names.database_user);
        if let Some(found) = ensure::find_database_user(forge, server, user).await? {
            if !going_away(&found.status) {
                kit::forge_gone(forge.delete_database_user(server, found.id).await)?;
            }
            remaining.push(format!("database user {user}"));
        }
        if let Some(schema) = ensure::find_database(forge, server, database).await? {
            if !going_away(&schema.status) {
                kit::forge_gone(forge.delete_database(server, schema.id).await)?;
            }
            remaining.push(format!("database {database}"));
        }
    }
    Ok(remaining)
}
