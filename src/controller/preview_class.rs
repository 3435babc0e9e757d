//! PreviewClass status: whether its Secrets resolve, Forge accepts its token and its
//! server exists, and how many environments use it. Read-only towards Forge (one
//! `GET` of the server per look), so an admin sees a broken class before a tenant does.
//! The environment count is refreshed on every look (class change, or `RECHECK`).

use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use super::kit::k8s::read_secret_key;
use super::kit::{self, Reconciler};
use super::{Context, Error, apply_status};
use crate::api::conditions::{self, Conditioned, Kstatus, Status};
use crate::api::preview_class::{ClassSecretKeyRef, PreviewClass};
use crate::api::preview_environment::PreviewEnvironment;
use crate::forge::ForgeError;

const MANAGER: &str = "switchyard-preview-classes";
/// How often a healthy class's token and server are checked again.
const RECHECK: Duration = Duration::from_secs(600);

struct ClassContext {
    ctx: Arc<Context>,
}

/// Runs the controller until `shutdown` resolves.
pub fn run(ctx: Arc<Context>, shutdown: Shared<BoxFuture<'static, ()>>) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let classes: Api<PreviewClass> = Api::all(ctx.client.clone());
        // Environment changes do not trigger a look (each look asks Forge): the count
        // is refreshed on every class change and every `RECHECK`.
        let controller = Controller::new(classes, watcher::Config::default().any_semantic());
        let cctx = Arc::new(ClassContext { ctx: ctx.clone() });
        kit::run(controller, ctx, cctx, shutdown).await;
    })
}

/// The class an environment counts towards (recorded, named, or the default).
fn uses(env: &PreviewEnvironment, class: &PreviewClass) -> bool {
    let recorded = env.status.as_ref().and_then(|s| s.target.as_ref()).map(|t| t.class_name.as_str());
    match recorded.or(env.spec.class_name.as_deref()) {
        Some(name) => name == class.name_any(),
        None => class.is_default(),
    }
}

async fn read(ctx: &Context, r: &ClassSecretKeyRef) -> Result<Result<String, String>, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &r.namespace);
    Ok(read_secret_key(&api, &r.name, &r.key).await?.map_err(|p| p.to_string()))
}

#[async_trait::async_trait]
impl Reconciler for ClassContext {
    type Object = PreviewClass;
    const KIND: &'static str = "PreviewClass";

    async fn reconcile(&self, class: Arc<PreviewClass>) -> Result<Action, Error> {
        let api: Api<PreviewClass> = Api::all(self.ctx.client.clone());
        let generation = class.metadata.generation;
        let saved = class.status.clone();
        let mut status = saved.clone().unwrap_or_default();
        let envs = self.ctx.watched::<PreviewEnvironment>().list(&Default::default()).await?.items;
        let count = envs.iter().filter(|e| uses(e, &class)).count();
        status.environments = Some(i32::try_from(count).unwrap_or(i32::MAX));

        let token = read(&self.ctx, &class.spec.forge.token_secret_ref).await?;
        let admin = match &class.spec.database.admin_credentials_secret_ref {
            Some(r) => read(&self.ctx, r).await?.map(|_| ()),
            None => Ok(()),
        };
        let missing = [token.as_ref().err(), admin.as_ref().err()].into_iter().flatten().cloned().collect::<Vec<_>>();
        let c = &mut status.conditions;
        if !missing.is_empty() {
            let message = missing.join("; ");
            conditions::set(c, "SecretsResolved", Status::False, "SecretNotFound", &message, generation);
            for type_ in ["TokenAccepted", "ServerExists"] {
                conditions::set(c, type_, Status::Unknown, "SecretNotFound", "the token cannot be read", generation);
            }
            kit::stall(&self.ctx, &api, &class, saved.as_ref(), status, MANAGER, "SecretNotFound", message).await?;
            return Ok(Action::await_change());
        }
        conditions::set(
            c,
            "SecretsResolved",
            Status::True,
            "Resolved",
            "every Secret the class names exists",
            generation,
        );
        let Ok(token) = token else { return Ok(Action::await_change()) };
        let Some(forge_config) = self.ctx.config.forge.as_ref() else {
            let message = "the operator config has no forge section".to_string();
            kit::stall(&self.ctx, &api, &class, saved.as_ref(), status, MANAGER, "ForgeNotConfigured", message).await?;
            return Ok(Action::await_change());
        };
        let mut settings = forge_config.clone();
        if let Some(url) = &class.spec.forge.base_url {
            settings.base_url = url.clone();
        }
        let forge = self.ctx.services.forge(&settings, &class.spec.forge.organization, token)?;
        let server = u64::try_from(class.spec.forge.server_id).unwrap_or(0);
        let (token_ok, server_ok, reason, message) = match forge.get_server(server).await {
            Ok(s) => (true, true, "Ready", format!("server {} ({}) answers", s.id, s.name)),
            Err(ForgeError::NotFound { .. }) => (
                true,
                false,
                "ServerNotFound",
                format!("organization {} has no server {server}", class.spec.forge.organization),
            ),
            Err(e @ (ForgeError::Unauthorized { .. } | ForgeError::Forbidden { .. })) => {
                (false, false, "TokenRejected", e.to_string())
            }
            Err(e) => return Err(Error::Forge(e)),
        };
        let c = &mut status.conditions;
        let token_reason = if token_ok { "Accepted" } else { reason };
        conditions::set(c, "TokenAccepted", token_ok.into(), token_reason, &message, generation);
        let server_reason = if server_ok { "Found" } else { reason };
        conditions::set(c, "ServerExists", server_ok.into(), server_reason, &message, generation);
        if !(token_ok && server_ok) {
            kit::stall(&self.ctx, &api, &class, saved.as_ref(), status, MANAGER, reason, message).await?;
            return Ok(Action::requeue(RECHECK));
        }
        status.kstatus(generation, Kstatus::Ready, "Ready", &message);
        apply_status(&api, class.as_ref(), saved.as_ref(), &status, MANAGER).await?;
        Ok(Action::requeue(RECHECK))
    }
}
