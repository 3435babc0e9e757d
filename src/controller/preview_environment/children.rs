//! The Kubernetes objects a PreviewEnvironment owns, built in one place: its
//! Redis SharedResourceClaim and the Secret with its generated credentials.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::api::preview_environment::PreviewEnvironment;
use crate::api::shared_resource_claim::{ReclaimPolicy, ResourceType, SharedResourceClaim, SharedResourceClaimSpec};
use crate::controller::kit::k8s::managed_labels;

/// Key of the generated database password in the credentials Secret.
pub const DB_PASSWORD_KEY: &str = "database-password";
/// Key of the generated Laravel `APP_KEY` in the credentials Secret.
pub const APP_KEY_KEY: &str = "app-key";

/// Name of the environment's Redis SharedResourceClaim.
pub fn redis_claim_name(env: &PreviewEnvironment) -> String {
    format!("{}-redis", env.name_any())
}

/// Name of the Secret with the generated credentials.
pub fn credentials_secret_name(env: &PreviewEnvironment) -> String {
    format!("{}-credentials", env.name_any())
}

/// A controller owner reference to `env`, so its dependents are garbage-collected with it.
pub fn owner_reference(env: &PreviewEnvironment) -> OwnerReference {
    env.controller_owner_ref(&()).unwrap_or_else(|| OwnerReference {
        api_version: PreviewEnvironment::api_version(&()).into_owned(),
        kind: PreviewEnvironment::kind(&()).into_owned(),
        name: env.name_any(),
        uid: env.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

fn owned_meta(env: &PreviewEnvironment, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: env.namespace(),
        owner_references: Some(vec![owner_reference(env)]),
        labels: Some(managed_labels()),
        ..Default::default()
    }
}

/// The claim for a Redis database number from `pool`, flushed when released.
pub fn redis_claim(env: &PreviewEnvironment, pool: &str) -> SharedResourceClaim {
    SharedResourceClaim {
        metadata: owned_meta(env, redis_claim_name(env)),
        spec: SharedResourceClaimSpec {
            type_: ResourceType::RedisDatabase,
            pool: pool.to_string(),
            value: None,
            mode: Default::default(),
            capacity: None,
            ttl: None,
            renewed_at: None,
            conflict_policy: Default::default(),
            reclaim_policy: ReclaimPolicy::Delete,
        },
        status: None,
    }
}

/// The credentials Secret holding `password` and `app_key` (values never logged).
pub fn credentials_secret(env: &PreviewEnvironment, password: String, app_key: String) -> Secret {
    Secret {
        metadata: owned_meta(env, credentials_secret_name(env)),
        string_data: Some([(DB_PASSWORD_KEY.to_string(), password), (APP_KEY_KEY.to_string(), app_key)].into()),
        ..Default::default()
    }
}
