//! Events: published through one recorder, never failing a reconcile, and a
//! failure's Warning deduplicated per object until it recovers.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use crate::controller::Context;

/// Objects whose last reconcile failed, with the reason already published, so a
/// failure retried every ten seconds is one Event, not one per retry. Bounded by
/// the number of objects failing at once; an entry goes when its object recovers.
#[derive(Default)]
pub struct Failures(Mutex<HashMap<String, &'static str>>);

impl Failures {
    /// One entry per (controller, object): two controllers may watch one kind.
    fn key<K: Resource<DynamicType = ()>>(controller: &str, obj: &K) -> String {
        let (ns, name, uid) = (obj.namespace().unwrap_or_default(), obj.name_any(), obj.uid().unwrap_or_default());
        format!("{controller}/{ns}/{name}/{uid}")
    }

    /// Records `reason` for `obj`; true when it was not the reason already recorded.
    pub fn is_new<K: Resource<DynamicType = ()>>(&self, controller: &str, obj: &K, reason: &'static str) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(Self::key(controller, obj), reason) != Some(reason)
    }

    /// `obj` reconciled: its next failure is news again.
    pub fn clear<K: Resource<DynamicType = ()>>(&self, controller: &str, obj: &K) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !map.is_empty() {
            map.remove(&Self::key(controller, obj));
        }
    }
}

/// Publishes an Event about `obj`. A failure to publish is logged and otherwise
/// ignored: Events are for humans and must not fail a reconcile.
pub async fn publish<K>(ctx: &Context, obj: &K, type_: EventType, reason: &str, action: &str, note: String)
where
    K: Resource<DynamicType = ()>,
{
    let event = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish an Event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PreviewEnvironment;

    fn env(name: &str) -> PreviewEnvironment {
        let mut env = PreviewEnvironment::new(
            name,
            serde_json::from_value(serde_json::json!({
                "repository": "o/r", "pullRequest": 1, "branch": "b", "project": "p",
                "forge": {"serverId": 1}, "site": {}
            }))
            .unwrap_or_else(|e| panic!("spec: {e}")),
        );
        env.metadata.namespace = Some("ns".into());
        env
    }

    #[test]
    fn a_failure_is_news_once_per_reason_until_it_recovers() {
        let f = Failures::default();
        let (a, b) = (env("a"), env("b"));
        assert!(f.is_new("PreviewEnvironment", &a, "ForgeError"));
        assert!(!f.is_new("PreviewEnvironment", &a, "ForgeError"), "the retry of the same failure is not");
        assert!(f.is_new("PullRequestComment", &a, "ForgeError"), "another controller of the same object is");
        assert!(f.is_new("PreviewEnvironment", &b, "ForgeError"), "another object is");
        assert!(f.is_new("PreviewEnvironment", &a, "KubeError"), "another reason is");
        f.clear("PreviewEnvironment", &a);
        assert!(f.is_new("PreviewEnvironment", &a, "KubeError"), "after recovering it is news again");
    }
}
