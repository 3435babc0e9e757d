//! The load step: everything a reconcile reads before it acts — names, the Forge
//! client and the Secrets the spec references. A missing or unusable input is
//! `Error::Invalid` (the environment stalls until the spec or the Secret changes).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Resource, ResourceExt};

use super::PreviewContext;
use crate::api::SecretKeyRef;
use crate::api::preview_environment::{CloneStrategy, PreviewEnvironment};
use crate::api::shared_resource_claim::ResourceType;
use crate::controller::Error;
use crate::forge::{ForgeApi, ForgeConfig, ForgeToken, HttpForgeClient, RateLimit};
use crate::logic::preview::Names;

const DB_PASSWORD_KEY: &str = "database-password";
const APP_KEY_KEY: &str = "app-key";

/// Generated credentials, kept in a Secret owned by the environment so they
/// survive restarts. Never printed.
pub struct Credentials {
    pub database_password: String,
    pub app_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials([redacted])")
    }
}

/// What one reconcile works from.
pub struct Inputs {
    pub names: Names,
    pub server: u64,
    pub forge: Arc<dyn ForgeApi>,
    /// The spec's `.env` entries with Secret values resolved.
    pub env: BTreeMap<String, String>,
    /// The MySQL admin URL for `clone`.
    pub admin_url: Option<String>,
    pub credentials: Credentials,
    /// Name of the Secret holding `credentials`.
    pub credentials_secret: String,
}

fn invalid(reason: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid { reason, message: message.into() }
}

/// Names of the Secrets in the environment's namespace that it reads.
pub fn secret_names(env: &PreviewEnvironment) -> BTreeSet<String> {
    let spec = &env.spec;
    let mut names = BTreeSet::new();
    if let Some(r) = &spec.forge.token_secret_ref {
        names.insert(r.name.clone());
    }
    if let Some(r) = spec.database.as_ref().and_then(|d| d.admin_credentials_secret_ref.as_ref()) {
        names.insert(r.name.clone());
    }
    for e in &spec.env {
        if let Some(from) = &e.value_from {
            names.insert(from.secret_key_ref.name.clone());
        }
    }
    names
}

/// Name of the environment's Redis SharedResourceClaim.
pub fn redis_claim_name(env: &PreviewEnvironment) -> String {
    format!("{}-redis", env.name_any())
}

/// Name of the Secret with the generated credentials.
pub fn credentials_secret_name(env: &PreviewEnvironment) -> String {
    format!("{}-credentials", env.name_any())
}

pub async fn load(env: &PreviewEnvironment, pctx: &PreviewContext) -> Result<Inputs, Error> {
    let config = &pctx.ctx.config;
    let forge_config = config.forge.as_ref().ok_or_else(|| {
        invalid("ForgeNotConfigured", "the operator config has no forge section; previews cannot be created")
    })?;
    let names = Names::derive(&env.spec, forge_config.base_domain.as_deref())
        .map_err(|e| invalid("InvalidName", e.to_string()))?;
    if let Some(redis) = &env.spec.redis {
        match config.pool(&redis.pool) {
            Some(p) if p.type_() == ResourceType::RedisDatabase => {}
            Some(_) => {
                return Err(invalid("RedisPoolInvalid", format!("pool {} is not a RedisDatabase pool", redis.pool)));
            }
            None => {
                return Err(invalid(
                    "RedisPoolNotFound",
                    format!("no pool named {} in the operator config", redis.pool),
                ));
            }
        }
    }
    let ns = env.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(pctx.ctx.client.clone(), &ns);

    let token = match &env.spec.forge.token_secret_ref {
        Some(r) => read_key(&secrets, r, "Forge token").await?,
        None => {
            let r = forge_config.token_secret_ref.as_ref().ok_or_else(|| {
                invalid(
                    "ForgeTokenMissing",
                    "spec.forge.tokenSecretRef is unset and the operator config names no token",
                )
            })?;
            let api: Api<Secret> = Api::namespaced(pctx.ctx.client.clone(), &r.namespace);
            read_key(&api, &SecretKeyRef { name: r.name.clone(), key: r.key.clone() }, "Forge token").await?
        }
    };
    let organization = env.spec.forge.organization.clone().unwrap_or_else(|| forge_config.organization.clone());
    let forge = forge_client(pctx, forge_config, &organization, token)?;

    let mut entries = BTreeMap::new();
    for e in &env.spec.env {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => read_key(&secrets, &from.secret_key_ref, &format!("env {}", e.name)).await?,
            (None, None) => String::new(),
        };
        entries.insert(e.name.clone(), value);
    }
    let admin_url = match env.spec.database.as_ref() {
        Some(db) if db.strategy == CloneStrategy::Clone => match &db.admin_credentials_secret_ref {
            Some(r) => Some(read_key(&secrets, r, "database admin credentials").await?),
            None => return Err(invalid("AdminCredentialsMissing", "strategy clone needs adminCredentialsSecretRef")),
        },
        _ => None,
    };
    let credentials_secret = credentials_secret_name(env);
    let credentials = credentials(&secrets, env, &credentials_secret).await?;
    Ok(Inputs {
        names,
        server: u64::try_from(env.spec.forge.server_id).unwrap_or(0),
        forge,
        env: entries,
        admin_url,
        credentials,
        credentials_secret,
    })
}

/// One key of a Secret; a missing Secret or key stalls the environment (the Secret
/// watch retries it when the Secret appears). The value is never part of an error.
async fn read_key(api: &Api<Secret>, r: &SecretKeyRef, what: &str) -> Result<String, Error> {
    let secret = api
        .get_opt(&r.name)
        .await?
        .ok_or_else(|| invalid("SecretNotFound", format!("Secret {} (for the {what}) does not exist", r.name)))?;
    let bytes = secret.data.as_ref().and_then(|d| d.get(&r.key)).map(|b| b.0.clone());
    let bytes =
        bytes.or_else(|| secret.string_data.as_ref().and_then(|d| d.get(&r.key)).map(|s| s.clone().into_bytes()));
    let bytes = bytes.ok_or_else(|| {
        invalid("SecretKeyNotFound", format!("Secret {} has no key {} (for the {what})", r.name, r.key))
    })?;
    String::from_utf8(bytes).map(|s| s.trim_end_matches('\n').to_string()).map_err(|_| {
        invalid("SecretNotText", format!("key {} of Secret {} (for the {what}) is not UTF-8 text", r.key, r.name))
    })
}

fn forge_client(
    pctx: &PreviewContext,
    forge_config: &crate::config::ForgeSettings,
    organization: &str,
    token: String,
) -> Result<Arc<dyn ForgeApi>, Error> {
    let base_url = forge_config.base_url.as_str();
    let token = ForgeToken::new(token);
    let key = (base_url.to_string(), organization.to_string(), token.digest());
    let mut clients = pctx.forge_clients.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    let mut config = ForgeConfig::new(base_url, organization, token);
    config.rate_limit = RateLimit::new(forge_config.rate_limit_per_minute, Duration::from_secs(60));
    config.request_timeout = forge_config.request_timeout;
    let client = Arc::new(
        HttpForgeClient::new(config)
            .map_err(|e| Error::Backend(crate::backends::BackendError { backend: "forge", message: e.to_string() }))?,
    );
    clients.insert(key, client.clone());
    Ok(client)
}

/// The environment's generated credentials: read from its Secret, or generated and
/// stored there first (a create that loses a race reads the winner's).
async fn credentials(api: &Api<Secret>, env: &PreviewEnvironment, name: &str) -> Result<Credentials, Error> {
    let from = |secret: &Secret| {
        let get =
            |k: &str| secret.data.as_ref().and_then(|d| d.get(k)).and_then(|b| String::from_utf8(b.0.clone()).ok());
        Some(Credentials { database_password: get(DB_PASSWORD_KEY)?, app_key: get(APP_KEY_KEY)? })
    };
    if let Some(existing) = api.get_opt(name).await? {
        return from(&existing).ok_or_else(|| {
            invalid("CredentialsSecretInvalid", format!("Secret {name} lacks {DB_PASSWORD_KEY} or {APP_KEY_KEY}"))
        });
    }
    // Hex: safe in a .env file and in any MySQL client's quoting.
    let password = hex::encode(rand::random::<[u8; 24]>());
    let key: [u8; 32] = rand::random();
    let app_key = format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(key));
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: env.namespace(),
            owner_references: Some(vec![owner_reference(env)]),
            labels: Some([("app.kubernetes.io/managed-by".to_string(), "switchyard".to_string())].into()),
            ..Default::default()
        },
        string_data: Some([(DB_PASSWORD_KEY.to_string(), password), (APP_KEY_KEY.to_string(), app_key)].into()),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(created) => from(&created).ok_or_else(|| Error::Waiting(format!("Secret {name} created; reading it back"))),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            Err(Error::Waiting(format!("Secret {name} was created concurrently")))
        }
        Err(e) => Err(e.into()),
    }
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
