//! Gating by a RepoDependencyGraph: what this environment waits for before it
//! deploys, and before it may be deleted (`logic::gating` decides; this reads the
//! graph and the other environments of the stack).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};

use super::PreviewContext;
use crate::api::conditions::{self, READY};
use crate::api::{PreviewEnvironment, RepoDependencyGraph};
use crate::controller::Error;
use crate::logic::gating::{self, Gate};

/// The other environments of `env`'s stack in its namespace (from the watch cache).
fn stack_members(env: &PreviewEnvironment, store: &Store<PreviewEnvironment>) -> Vec<Arc<PreviewEnvironment>> {
    let Some(stack) = env.spec.stack.as_deref() else { return Vec::new() };
    store
        .state()
        .into_iter()
        .filter(|e| e.namespace() == env.namespace() && e.spec.stack.as_deref() == Some(stack) && e.uid() != env.uid())
        .collect()
}

async fn graph(env: &PreviewEnvironment, pctx: &PreviewContext) -> Result<Option<RepoDependencyGraph>, Error> {
    let Some(graph_ref) = &env.spec.graph_ref else { return Ok(None) };
    let api: Api<RepoDependencyGraph> = Api::namespaced(pctx.ctx.client.clone(), &env.namespace().unwrap_or_default());
    Ok(api.get_opt(&graph_ref.name).await?)
}

/// Whether `env` may deploy; `None` when it names no graph.
pub async fn deploy(env: &PreviewEnvironment, pctx: &PreviewContext) -> Result<Option<Gate>, Error> {
    if env.spec.graph_ref.is_none() {
        return Ok(None);
    }
    let graph = graph(env, pctx).await?;
    let mut stack: BTreeMap<String, bool> = BTreeMap::new();
    for other in stack_members(env, &pctx.store) {
        let ready = other.status.as_ref().is_some_and(|s| conditions::is_true(&s.conditions, READY));
        // Several environments of one repository in a stack: all must be Ready.
        *stack.entry(other.spec.repository.clone()).or_insert(true) &= ready;
    }
    Ok(Some(gating::deploy_gate(graph.as_ref(), &env.spec.repository, &stack)))
}

/// Whether `env` may be torn down now (its dependents in the stack go first).
pub async fn delete(env: &PreviewEnvironment, pctx: &PreviewContext) -> Result<Gate, Error> {
    if env.spec.graph_ref.is_none() {
        return Ok(Gate::Open);
    }
    let graph = graph(env, pctx).await?;
    let stack: BTreeSet<String> = stack_members(env, &pctx.store).iter().map(|e| e.spec.repository.clone()).collect();
    Ok(gating::delete_gate(graph.as_ref(), &env.spec.repository, &stack))
}

/// The environments to wake when `env` changes: the rest of its stack.
pub fn wake_stack(env: &PreviewEnvironment, store: &Store<PreviewEnvironment>) -> Vec<ObjectRef<PreviewEnvironment>> {
    stack_members(env, store).iter().map(|e| ObjectRef::from_obj(&**e)).collect()
}
