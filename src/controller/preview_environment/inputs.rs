//! The load step: everything a reconcile reads before it acts — names, the Forge
//! client and the Secrets the spec references. A missing or unusable input is
//! `Error::Invalid` (the environment stalls until the spec or the Secret changes).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use super::PreviewContext;
use super::children::{self, APP_KEY_KEY, DB_PASSWORD_KEY};
use crate::api::SecretKeyRef;
use crate::api::preview_environment::{CloneStrategy, PreviewEnvironment};
use crate::api::shared_resource_claim::ResourceType;
use crate::controller::Error;
use crate::controller::kit::k8s::{is_conflict, read_secret_key, secret_key};
use crate::forge::ForgeApi;
use crate::logic::preview::Names;

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
    pub dotenv: BTreeMap<String, String>,
    /// The MySQL admin URL for `clone`.
    pub admin_url: Option<String>,
    pub credentials: Credentials,
    /// Name of the Secret holding `credentials`.
    pub credentials_secret: String,
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

pub async fn load(env: &PreviewEnvironment, pctx: &PreviewContext) -> Result<Inputs, Error> {
    let config = &pctx.ctx.config;
    let forge_config = config.forge.as_ref().ok_or_else(|| {
        Error::invalid("ForgeNotConfigured", "the operator config has no forge section; previews cannot be created")
    })?;
    let names = Names::derive(&env.spec, forge_config.base_domain.as_deref())
        .map_err(|e| Error::invalid("InvalidName", e.to_string()))?;
    if let Some(redis) = &env.spec.redis {
        match config.pool(&redis.pool) {
            Some(p) if p.type_() == ResourceType::RedisDatabase => {}
            Some(_) => {
                return Err(Error::invalid(
                    "RedisPoolInvalid",
                    format!("pool {} is not a RedisDatabase pool", redis.pool),
                ));
            }
            None => {
                return Err(Error::invalid(
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
                Error::invalid(
                    "ForgeTokenMissing",
                    "spec.forge.tokenSecretRef is unset and the operator config names no token",
                )
            })?;
            let api: Api<Secret> = Api::namespaced(pctx.ctx.client.clone(), &r.namespace);
            read_key(&api, &SecretKeyRef { name: r.name.clone(), key: r.key.clone() }, "Forge token").await?
        }
    };
    let organization = env.spec.forge.organization.clone().unwrap_or_else(|| forge_config.organization.clone());
    let forge = pctx.ctx.services.forge(forge_config, &organization, token)?;

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
            None => {
                return Err(Error::invalid(
                    "AdminCredentialsMissing",
                    "strategy clone needs adminCredentialsSecretRef",
                ));
            }
        },
        _ => None,
    };
    let credentials_secret = children::credentials_secret_name(env);
    let credentials = credentials(&secrets, env, &credentials_secret).await?;
    Ok(Inputs {
        names,
        server: u64::try_from(env.spec.forge.server_id).unwrap_or(0),
        forge,
        dotenv: entries,
        admin_url,
        credentials,
        credentials_secret,
    })
}

/// One key of a Secret; a missing Secret or key stalls the environment (the Secret
/// watch retries it when the Secret appears). The value is never part of an error.
async fn read_key(api: &Api<Secret>, r: &SecretKeyRef, what: &str) -> Result<String, Error> {
    read_secret_key(api, &r.name, &r.key).await?.map_err(|p| p.invalid(what))
}

/// The environment's generated credentials: read from its Secret, or generated and
/// stored there first (a create that loses a race reads the winner's).
async fn credentials(api: &Api<Secret>, env: &PreviewEnvironment, name: &str) -> Result<Credentials, Error> {
    let from = |secret: &Secret| {
        Some(Credentials {
            database_password: secret_key(secret, DB_PASSWORD_KEY).ok()?,
            app_key: secret_key(secret, APP_KEY_KEY).ok()?,
        })
    };
    if let Some(existing) = api.get_opt(name).await? {
        return from(&existing).ok_or_else(|| {
            Error::invalid(
                "CredentialsSecretInvalid",
                format!("Secret {name} lacks {DB_PASSWORD_KEY} or {APP_KEY_KEY}"),
            )
        });
    }
    // Hex: safe in a .env file and in any MySQL client's quoting.
    let password = hex::encode(rand::random::<[u8; 24]>());
    let key: [u8; 32] = rand::random();
    let app_key = format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(key));
    // Generated once and kept: created, never applied over (that would rotate them).
    match api.create(&PostParams::default(), &children::credentials_secret(env, password, app_key)).await {
        Ok(created) => from(&created).ok_or_else(|| Error::Waiting(format!("Secret {name} created; reading it back"))),
        Err(e) if is_conflict(&e) => Err(Error::Waiting(format!("Secret {name} was created concurrently"))),
        Err(e) => Err(e.into()),
    }
}
