//! Deleting an environment: workers, certificates, site, database user and schema
//! (Forge keeps the database when a site goes), then the Redis claim (which
//! `FLUSHDB`s). The finalizer stays until Forge confirms each object is gone, so
//! an unreachable Forge delays the deletion instead of leaking.
//!
//! With `deletionPolicy: Orphan` nothing remote is touched; an Event names what was left.

use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::PreviewContext;
use super::inputs;
use super::provision::{forge_error, owner_tag};
use crate::api::DeletionPolicy;
use crate::api::preview_environment::PreviewEnvironment;
use crate::api::shared_resource_claim::SharedResourceClaim;
use crate::controller::{Error, publish};
use crate::forge::ensure;
use crate::forge::{ForgeApi, ForgeError};
use crate::logic::preview::Names;

fn ignore_missing(result: Result<(), ForgeError>) -> Result<(), Error> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(forge_error(e)),
    }
}

pub async fn run(
    _api: &Api<PreviewEnvironment>,
    env: &PreviewEnvironment,
    pctx: &PreviewContext,
) -> Result<Action, Error> {
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
        publish(&pctx.ctx, env, EventType::Normal, "Orphaned", "Delete", note).await;
        release_redis(env, pctx).await?;
        return Ok(Action::await_change());
    }
    // Without a forge section nothing can have been created on Forge.
    if pctx.ctx.config.forge.is_none() {
        release_redis(env, pctx).await?;
        return Ok(Action::await_change());
    }
    // Dependents in the stack go first.
    if let crate::logic::gating::Gate::Wait(wait) = super::gate::delete(env, pctx).await? {
        return Err(Error::Waiting(format!("not deleting yet: {}", wait.message)));
    }
    let inputs = match inputs::load(env, pctx).await {
        Ok(i) => i,
        // Without a token nothing can be deleted: keep the finalizer and say why.
        Err(Error::Invalid { reason, message }) => {
            publish(&pctx.ctx, env, EventType::Warning, reason, "Delete", format!("cannot tear down yet: {message}"))
                .await;
            return Err(Error::Waiting(message));
        }
        Err(e) => return Err(e),
    };
    let forge = inputs.forge.as_ref();
    let server = inputs.server;
    let remaining = remove_remote(env, forge, server, &inputs.names).await?;
    if !remaining.is_empty() {
        return Err(Error::Waiting(format!("waiting for Forge to remove {}", remaining.join(", "))));
    }
    release_redis(env, pctx).await?;
    publish(
        &pctx.ctx,
        env,
        EventType::Normal,
        "TornDown",
        "Delete",
        format!("removed {} from Forge", inputs.names.domain),
    )
    .await;
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
    let site = ensure::find_site(forge, server, &names.domain).await.map_err(forge_error)?;
    // Only a site this object created is ours to delete.
    if let Some(site) = site.filter(|s| s.tags.contains(&tag)) {
        if site.status != "removing" {
            for process in forge.list_background_processes(server, Some(site.id)).await.map_err(forge_error)? {
                if process.status != "removing" {
                    ignore_missing(forge.delete_background_process(server, process.id).await)?;
                }
            }
            for cert in forge.list_certificates(server, site.id, None).await.map_err(forge_error)? {
                if !matches!(cert.status.as_str(), "deleting" | "removing") {
                    let domain = env.status.as_ref().and_then(|s| s.domain_id).map(|d| d as u64);
                    if let Some(domain) = domain {
                        ignore_missing(forge.delete_certificate(server, site.id, domain, cert.id).await)?;
                    }
                }
            }
            ignore_missing(forge.delete_site(server, site.id).await)?;
        }
        remaining.push(format!("site {}", names.domain));
    }
    // Only the names this object claimed before creating them (`claim_database_names`).
    if let Some(status) = env.status.as_ref().filter(|s| s.database_name.is_some()) {
        let database = status.database_name.as_deref().unwrap_or(&names.database);
        let user = status.database_user.as_deref().unwrap_or(&names.database_user);
        if let Some(found) = ensure::find_database_user(forge, server, user).await.map_err(forge_error)? {
            if found.status != "removing" {
                ignore_missing(forge.delete_database_user(server, found.id).await)?;
            }
            remaining.push(format!("database user {user}"));
        }
        if let Some(schema) = ensure::find_database(forge, server, database).await.map_err(forge_error)? {
            if schema.status != "removing" {
                ignore_missing(forge.delete_database(server, schema.id).await)?;
            }
            remaining.push(format!("database {database}"));
        }
    }
    Ok(remaining)
}

/// Deletes the environment's Redis claim now rather than waiting for garbage
/// collection, so its database is flushed and freed with the environment.
async fn release_redis(env: &PreviewEnvironment, pctx: &PreviewContext) -> Result<(), Error> {
    let api: Api<SharedResourceClaim> = Api::namespaced(pctx.ctx.client.clone(), &env.namespace().unwrap_or_default());
    let name = inputs::redis_claim_name(env);
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
