//! BridgeGrant: a rotated shared secret in a Secret the grant owns, the target's
//! effective allowlist in a ConfigMap, optionally a NetworkPolicy.
//!
//! load: the grant, its Secret, every grant publishing into the same ConfigMap (a
//! fresh list, under a per-ConfigMap lock) and that ConfigMap -> decide:
//! `logic::bridge_grant`, `logic::bridge_secret`, `logic::allowlist` -> apply:
//! server-side apply of the Secret, ConfigMap and NetworkPolicy -> status.
//!
//! The Secret and NetworkPolicy are owned by their grant, so the garbage collector
//! removes them with it. The ConfigMap belongs to no grant: it is the target's, the
//! union of every grant naming it, and it outlives them with an empty allowlist. A
//! deleted ConfigMap would not revoke anything: the kubelet keeps the last content
//! in the pods that mount it. Revocation is a republish instead, and a finalizer
//! makes a grant's deletion wait for the republish that drops it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, Shared};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::kit::k8s::{MANAGED_BY, MANAGED_BY_LABEL};
use super::kit::{self, Reconciler};
use super::{Context, Error, apply_status, publish};
use crate::api::bridge_grant::BridgeGrant;
use crate::api::conditions::{self, Conditioned, Kstatus, READY, STALLED, Status};
use crate::logic::allowlist::{
    self, Allowlist, CONFIG_MAP_KEY, GrantProblem, REVOCATION_RETENTION, carry_revocations, effective_allowlist,
};
use crate::logic::bridge_grant::{self, ValidGrant};
use crate::logic::bridge_secret::{self, BridgeSecret, RotationAction, RotationPolicy};
use crate::logic::identifier::Identifier;

/// Finalizer that removes the grant from its target's allowlist before it goes.
pub const FINALIZER: &str = "switchyard.dev/revoke-bridge-grant";
/// Label telling which part of a grant an object is; the watches select on it.
pub const COMPONENT_LABEL: &str = "switchyard.dev/component";
/// [`COMPONENT_LABEL`] value of a grant's Secret.
pub const SECRET_COMPONENT: &str = "bridge-secret";
/// [`COMPONENT_LABEL`] value of an allowlist ConfigMap.
pub const ALLOWLIST_COMPONENT: &str = "bridge-allowlist";
/// [`COMPONENT_LABEL`] value of a grant's NetworkPolicy.
pub const NETWORK_POLICY_COMPONENT: &str = "bridge-network-policy";
/// Annotation of an allowlist ConfigMap naming its target (canonical `code@tag`).
pub const TARGET_ANNOTATION: &str = "switchyard.dev/bridge-target";
const MANAGER: &str = "switchyard-bridge-grants";

/// One async lock per (namespace, ConfigMap name).
type PublishLocks = HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>;

/// What the grant reconciler shares besides the common [`Context`].
struct GrantContext {
    ctx: Arc<Context>,
    /// One lock per (namespace, ConfigMap): publishing reads every grant and writes
    /// the union, so two publishes of one ConfigMap must not interleave.
    publish_locks: Mutex<PublishLocks>,
}

impl GrantContext {
    fn publish_lock(&self, namespace: &str, config_map: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.publish_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry((namespace.to_string(), config_map.to_string())).or_default().clone()
    }
}

fn component(value: &str) -> watcher::Config {
    watcher::Config::default().labels(&format!("{COMPONENT_LABEL}={value}"))
}

/// Runs the controller until `shutdown` resolves.
pub fn run(ctx: Arc<Context>, shutdown: Shared<BoxFuture<'static, ()>>) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let controller = Controller::new(ctx.watched::<BridgeGrant>(), watcher::Config::default().any_semantic());
        let grants = controller.store();
        let (secrets, config_maps, policies) = (ctx.watched(), ctx.watched(), ctx.watched());
        let gctx = Arc::new(GrantContext { ctx, publish_locks: Mutex::default() });
        let controller = controller
            .owns::<Secret>(secrets, component(SECRET_COMPONENT))
            .owns::<NetworkPolicy>(policies, component(NETWORK_POLICY_COMPONENT))
            // An edited or deleted allowlist is put back by the grants publishing into it.
            .watches::<ConfigMap, _>(config_maps, component(ALLOWLIST_COMPONENT), move |cm| publishers(&grants, &cm));
        kit::run(controller, gctx.ctx.clone(), gctx, shutdown).await;
    })
}

/// The grants (from the watch cache) that publish into ConfigMap `cm`.
fn publishers(grants: &Store<BridgeGrant>, cm: &ConfigMap) -> Vec<ObjectRef<BridgeGrant>> {
    let name = cm.name_any();
    grants
        .state()
        .iter()
        .filter(|g| g.namespace() == cm.namespace())
        .filter(|g| bridge_grant::validate(&g.spec).is_ok_and(|v| v.config_map == name))
        .map(|g| ObjectRef::from_obj(g.as_ref()))
        .collect()
}

#[async_trait::async_trait]
impl Reconciler for GrantContext {
    type Object = BridgeGrant;
    const KIND: &'static str = "BridgeGrant";

    async fn reconcile(&self, grant: Arc<BridgeGrant>) -> Result<Action, Error> {
        let api = &self.ctx.api_of(grant.as_ref());
        let on_apply = |g: Arc<BridgeGrant>| async move { apply(api, &g, self).await };
        kit::finalized(api, FINALIZER, grant, on_apply, |g| async move { cleanup(&g, self).await }).await
    }
}

fn controlled_by<K: Resource>(obj: &K, grant: &BridgeGrant) -> bool {
    let uid = grant.uid().unwrap_or_default();
    obj.meta().owner_references.iter().flatten().any(|o| o.controller == Some(true) && o.uid == uid)
}

/// [`kit::k8s::apply_owned`] as this controller's field manager.
async fn apply_object<K>(
    api: &Api<K>,
    name: &str,
    object: serde_json::Value,
    resource_version: Option<String>,
) -> Result<K, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    kit::k8s::apply_owned(api, name, object, resource_version, MANAGER).await
}

fn labels(component: &str) -> serde_json::Value {
    json!({ COMPONENT_LABEL: component, MANAGED_BY_LABEL: MANAGED_BY })
}

async fn apply(api: &Api<BridgeGrant>, grant: &BridgeGrant, gctx: &GrantContext) -> Result<Action, Error> {
    let valid = match bridge_grant::validate(&grant.spec) {
        Ok(valid) => valid,
        Err(invalid) => {
            // An invalid grant allows nothing: take back whatever it allowed before.
            if let Ok(target) = Identifier::parse(&grant.spec.target) {
                let config_map = grant
                    .spec
                    .allowlist_config_map
                    .clone()
                    .unwrap_or_else(|| allowlist::default_config_map_name(&target));
                ignore_conflict(publish_allowlist(gctx, grant, &config_map, &target).await)?;
            }
            return stall(api, grant, gctx, invalid.reason, invalid.message).await;
        }
    };

    let secret = match ensure_secret(grant, &valid.policy, gctx).await {
        Ok(secret) => secret,
        Err(Error::Invalid { reason, message }) => return stall(api, grant, gctx, reason, message).await,
        Err(e) => return Err(e),
    };

    let published = match publish_allowlist(gctx, grant, &valid.config_map, &valid.target).await {
        Ok(published) => published,
        Err(Error::Invalid { reason, message }) => return stall(api, grant, gctx, reason, message).await,
        Err(e) => return Err(e),
    };
    // The grant moved to another ConfigMap: the old one must stop listing it.
    let previous_config_map = grant.status.as_ref().and_then(|s| s.allowlist_config_map.clone());
    if let Some(old) = previous_config_map.filter(|old| *old != valid.config_map) {
        ignore_conflict(publish_allowlist(gctx, grant, &old, &valid.target).await)?;
    }

    let network_policy = match ensure_network_policy(grant, gctx).await {
        Ok(name) => name,
        Err(Error::Invalid { reason, message }) => return stall(api, grant, gctx, reason, message).await,
        Err(e) => return Err(e),
    };

    let generation = grant.metadata.generation;
    let current = grant.status.clone().unwrap_or_default();
    let mut status = current.clone();
    status.observed_generation = generation;
    status.secret_name = Some(bridge_secret::secret_name(&grant.name_any()));
    status.secret_version = Some(secret.current.version);
    status.rotated_at = Some(Time(secret.current.not_before));
    status.next_rotation_at = Some(Time(valid.policy.next_rotation_at(&secret)));
    status.allowlist_config_map = Some(valid.config_map.clone());
    status.network_policy = network_policy;

    let name = grant.name_any();
    let own_problem = published.problems.iter().find(|p| p.grant() == name);
    let (ready, reason, message) = match own_problem {
        Some(problem) => (
            Status::False,
            problem.reason(),
            format!("{problem}; the permissions are published under the other bridge path"),
        ),
        None => (
            Status::True,
            "Published",
            format!("secret version {}; allowlist published in ConfigMap {}", secret.current.version, valid.config_map),
        ),
    };
    let was_ready = conditions::is_true(&current.conditions, READY);
    let kstatus = if ready == Status::True { Kstatus::Ready } else { Kstatus::Stalled };
    status.kstatus(generation, kstatus, reason, &message);
    apply_status(api, grant, grant.status.as_ref(), &status, MANAGER).await?;
    match (was_ready, ready) {
        (false, Status::True) => publish(&gctx.ctx, grant, EventType::Normal, reason, "Publish", message).await,
        (_, Status::False) if conditions::get(&current.conditions, STALLED).is_none_or(|c| c.reason != reason) => {
            publish(&gctx.ctx, grant, EventType::Warning, reason, "Publish", message).await
        }
        _ => {}
    }

    let next = bridge_grant::requeue_after(
        valid.policy.next_change_at(&secret),
        Timestamp::now(),
        gctx.ctx.requeue_interval(),
    );
    Ok(Action::requeue(next))
}

/// Reads the grant's Secret, creates, rotates or prunes it as due, and returns what it now holds.
async fn ensure_secret(
    grant: &BridgeGrant,
    policy: &RotationPolicy,
    gctx: &GrantContext,
) -> Result<BridgeSecret, Error> {
    let name = bridge_secret::secret_name(&grant.name_any());
    let api: Api<Secret> = Api::namespaced(gctx.ctx.client.clone(), &grant.namespace().unwrap_or_default());
    let existing = api.get_opt(&name).await?;
    if let Some(secret) = &existing
        && !controlled_by(secret, grant)
    {
        return Err(Error::Invalid {
            reason: "SecretConflict",
            message: format!("Secret {name} exists and is not owned by this BridgeGrant; delete or rename it"),
        });
    }
    let data = existing.as_ref().and_then(|s| s.data.clone()).unwrap_or_default();
    let parsed = match bridge_secret::from_secret_data(&data) {
        Ok(parsed) => parsed,
        Err(e) => {
            // Unusable anyway: start over with a fresh secret (callers must reload it).
            let note = format!("Secret {name} is unreadable ({e}); generating a new secret");
            publish(&gctx.ctx, grant, EventType::Warning, "SecretDataInvalid", "Rotate", note).await;
            None
        }
    };
    let now = Timestamp::now();
    let action = bridge_secret::decide(parsed.as_ref(), policy, now);
    let (next, event) = match (action, parsed) {
        (RotationAction::Keep, Some(kept)) => return Ok(kept),
        (RotationAction::Rotate { .. }, Some(old)) => {
            let next = old.rotated(new_key()?, now, policy.overlap);
            let until = next.previous.as_ref().map_or_else(String::new, |p| format!(" until {}", p.not_after));
            let note = format!(
                "rotated the shared secret to version {}; version {} stays valid{until}",
                next.current.version, old.current.version
            );
            (next, Some(("SecretRotated", note)))
        }
        (RotationAction::PruneExpired, Some(old)) => {
            let note = old.previous.as_ref().map(|p| format!("secret version {} is no longer accepted", p.version));
            (old.pruned(), note.map(|n| ("PreviousSecretExpired", n)))
        }
        _ => {
            let mut first = BridgeSecret::initial(new_key()?, now);
            // Versions never go back, even when the Secret was deleted or broken.
            if let Some(last) = grant.status.as_ref().and_then(|s| s.secret_version) {
                first.current.version = last.saturating_add(1);
            }
            let note = format!("generated shared secret version {}", first.current.version);
            (first, Some(("SecretCreated", note)))
        }
    };
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": grant.namespace(),
            "labels": labels(SECRET_COMPONENT),
            "ownerReferences": [grant.controller_owner_ref(&())],
        },
        "type": "Opaque",
        "data": bridge_secret::to_secret_data(&next),
    });
    // A second writer (an old leader) fails instead of rotating twice.
    apply_object(&api, &name, secret, existing.as_ref().and_then(|s| s.resource_version())).await?;
    if let Some((reason, note)) = event {
        publish(&gctx.ctx, grant, EventType::Normal, reason, "Rotate", note).await;
    }
    Ok(next)
}

fn new_key() -> Result<bridge_secret::SecretKey, Error> {
    bridge_secret::generate_secret_from_os()
        .map_err(|e| Error::Waiting(format!("cannot read the operating system's random source: {e}")))
}

/// What a publish found out about the grants it folded in.
struct Published {
    problems: Vec<GrantProblem>,
}

/// Writes the allowlist of `target` into ConfigMap `config_map`: the union of every
/// live, valid grant in `grant`'s namespace naming that target and ConfigMap, with
/// revocations carried from what was published before. Writes nothing when unchanged.
async fn publish_allowlist(
    gctx: &GrantContext,
    grant: &BridgeGrant,
    config_map: &str,
    target: &Identifier,
) -> Result<Published, Error> {
    let ns = grant.namespace().unwrap_or_default();
    let lock = gctx.publish_lock(&ns, config_map);
    let _guard = lock.lock().await;

    let api: Api<ConfigMap> = Api::namespaced(gctx.ctx.client.clone(), &ns);
    let existing = api.get_opt(config_map).await?;
    if let Some(cm) = &existing {
        let ours = cm.labels().get(COMPONENT_LABEL).map(String::as_str) == Some(ALLOWLIST_COMPONENT);
        let other_target = cm.annotations().get(TARGET_ANNOTATION).filter(|t| **t != target.to_string());
        let problem = match (ours, other_target) {
            (false, _) => Some(format!("ConfigMap {config_map} exists and is not an allowlist switchyard manages")),
            (true, Some(other)) => Some(format!("ConfigMap {config_map} already publishes the allowlist of {other}")),
            (true, None) => None,
        };
        if let Some(problem) = problem {
            return Err(Error::Invalid {
                reason: "AllowlistConfigMapConflict",
                message: format!("{problem}; name another one in spec.allowlistConfigMap"),
            });
        }
    }

    // A fresh list, not the watch cache: a cache a moment behind would put back a
    // grant that was just deleted or narrowed.
    let grants: Api<BridgeGrant> = Api::namespaced(gctx.ctx.client.clone(), &ns);
    let members: Vec<BridgeGrant> = grants
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|g| g.metadata.deletion_timestamp.is_none())
        .filter(|g| {
            bridge_grant::validate(&g.spec).is_ok_and(|v: ValidGrant| v.target == *target && v.config_map == config_map)
        })
        .collect();
    let effective =
        effective_allowlist(target, members.iter().map(|g| (g.metadata.name.as_deref().unwrap_or(""), &g.spec)));

    let published_json = existing.as_ref().and_then(|cm| cm.data.as_ref()?.get(CONFIG_MAP_KEY).cloned());
    if existing.is_none() && members.is_empty() {
        return Ok(Published { problems: effective.problems });
    }
    let previous = published_json.as_deref().and_then(|json| Allowlist::from_json(json).ok());
    let mut next = effective.allowlist;
    carry_revocations(previous.as_ref(), &mut next, Timestamp::now(), REVOCATION_RETENTION);
    let json = next.to_json();
    if published_json.as_deref() != Some(json.as_str()) {
        let allowlist = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": config_map,
                "namespace": ns,
                "labels": labels(ALLOWLIST_COMPONENT),
                "annotations": { TARGET_ANNOTATION: target.to_string() },
            },
            "data": { CONFIG_MAP_KEY: json },
        });
        // Another operator process publishing from an older view fails instead of undoing a revocation.
        apply_object(&api, config_map, allowlist, existing.as_ref().and_then(|cm| cm.resource_version())).await?;
    }
    Ok(Published { problems: effective.problems })
}

/// A ConfigMap that is not ours lists nothing of this grant: nothing to take back there.
fn ignore_conflict(result: Result<Published, Error>) -> Result<(), Error> {
    match result {
        Ok(_) | Err(Error::Invalid { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Applies the NetworkPolicy the spec asks for, or deletes ours when it asks for none.
async fn ensure_network_policy(grant: &BridgeGrant, gctx: &GrantContext) -> Result<Option<String>, Error> {
    let name = bridge_grant::network_policy_name(&grant.name_any());
    let api: Api<NetworkPolicy> = Api::namespaced(gctx.ctx.client.clone(), &grant.namespace().unwrap_or_default());
    let existing = api.get_opt(&name).await?;
    let ours = existing.as_ref().map(|np| controlled_by(np, grant));
    let Some(wanted) = &grant.spec.network_policy else {
        if ours == Some(true) {
            api.delete(&name, &DeleteParams::default()).await?;
            let note = format!("removed NetworkPolicy {name}: spec.networkPolicy is unset");
            publish(&gctx.ctx, grant, EventType::Normal, "NetworkPolicyRemoved", "NetworkPolicy", note).await;
        }
        return Ok(None);
    };
    if ours == Some(false) {
        return Err(Error::Invalid {
            reason: "NetworkPolicyConflict",
            message: format!("NetworkPolicy {name} exists and is not owned by this BridgeGrant; delete or rename it"),
        });
    }
    let spec = bridge_grant::network_policy_spec(wanted);
    if existing.as_ref().and_then(|np| np.spec.as_ref()) == Some(&spec) {
        return Ok(Some(name));
    }
    let policy = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": grant.namespace(),
            "labels": labels(NETWORK_POLICY_COMPONENT),
            "ownerReferences": [grant.controller_owner_ref(&())],
        },
        "spec": spec,
    });
    match apply_object(&api, &name, policy, None).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 422 => {
            return Err(Error::Invalid { reason: "InvalidNetworkPolicy", message: e.message });
        }
        Err(e) => return Err(e.into()),
    }
    if existing.is_none() {
        let note = format!("created NetworkPolicy {name}");
        publish(&gctx.ctx, grant, EventType::Normal, "NetworkPolicyCreated", "NetworkPolicy", note).await;
    }
    Ok(Some(name))
}

/// The grant is going: republish its allowlist(s) without it. Its Secret and
/// NetworkPolicy go with it through their owner reference.
async fn cleanup(grant: &BridgeGrant, gctx: &GrantContext) -> Result<Action, Error> {
    let Ok(valid) = bridge_grant::validate(&grant.spec) else { return Ok(Action::await_change()) };
    let mut config_maps = vec![valid.config_map.clone()];
    config_maps.extend(grant.status.as_ref().and_then(|s| s.allowlist_config_map.clone()));
    config_maps.dedup();
    for config_map in &config_maps {
        ignore_conflict(publish_allowlist(gctx, grant, config_map, &valid.target).await)?;
    }
    let note = format!("removed from the allowlist in ConfigMap {}", config_maps.join(", "));
    publish(&gctx.ctx, grant, EventType::Normal, "Revoked", "Revoke", note).await;
    Ok(Action::await_change())
}

async fn stall(
    api: &Api<BridgeGrant>,
    grant: &BridgeGrant,
    gctx: &GrantContext,
    reason: &'static str,
    message: String,
) -> Result<Action, Error> {
    let status = grant.status.clone().unwrap_or_default();
    kit::stall(&gctx.ctx, api, grant, grant.status.as_ref(), status, MANAGER, reason, message).await?;
    // Some causes are other objects (a foreign Secret, ConfigMap or NetworkPolicy in
    // the way) whose removal triggers nothing here: look again now and then.
    Ok(Action::requeue(gctx.ctx.requeue_interval()))
}
