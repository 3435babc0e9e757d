//! Writing status: server-side apply under the controller's field manager, only
//! when something changed, and the one way to stall.

use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Error;
use super::events::publish;
use crate::api::conditions::{Conditioned, Kstatus};
use crate::controller::Context;

/// Server-side-applies `status` to `obj`'s status subresource as `manager`,
/// unless it equals what the object already shows.
pub async fn apply_status<K, S>(
    api: &Api<K>,
    obj: &K,
    current: Option<&S>,
    status: &S,
    manager: &str,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(());
    }
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(&obj.name_any(), &PatchParams::apply(manager).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

/// Writes `status` with `Stalled=True` for `reason` (unless that equals `saved`,
/// what the apiserver holds) and publishes a Warning Event when the object was not
/// already stalled for that reason. The object waits for a change of its spec or
/// of what it reads.
#[allow(clippy::too_many_arguments)]
pub async fn stall<K, S>(
    ctx: &Context,
    api: &Api<K>,
    obj: &K,
    saved: Option<&S>,
    mut status: S,
    manager: &str,
    reason: &str,
    message: String,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Conditioned + Serialize + PartialEq,
{
    status.on_stall(&message);
    let first = status.kstatus(obj.meta().generation, Kstatus::Stalled, reason, &message);
    apply_status(api, obj, saved, &status, manager).await?;
    if first {
        publish(ctx, obj, EventType::Warning, reason, "Validate", message).await;
    }
    Ok(())
}
