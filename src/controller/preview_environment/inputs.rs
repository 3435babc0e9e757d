//! The load step: everything a reconcile reads before it acts — the PreviewClass
//! and what it allows, names, the Forge client and the Secrets. A missing or unusable input is
//! `Error::Invalid` (the environment stalls until the spec or the Secret changes).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use super::PreviewContext;
use super::children::{self, APP_KEY_KEY, DB_PASSWORD_KEY};
use crate::api::SecretKeyRef;
use crate::api::preview_class::{ClassSecretKeyRef, PreviewClass, PreviewClassSpec};
use crate::api::preview_environment::{CloneStrategy, PreviewEnvironment, RecordedTarget};
use crate::api::shared_resource_claim::ResourceType;
use crate::controller::Error;
use crate::controller::kit::k8s::{is_conflict, read_secret_key, secret_key};
use crate::forge::ForgeApi;
use crate::logic::preview::Names;
use crate::logic::preview::class::{self, Violation};

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
    /// The environment with its class's settings and defaults filled in
    /// (`logic::preview::class::effective_spec`): what the steps read.
    pub effective: PreviewEnvironment,
    pub names: Names,
    /// Where the environment acts: recorded in status at the first reconcile, and
    /// from then on used instead of what the class says now.
    pub target: RecordedTarget,
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

/// Names of the Secrets in the environment's namespace that it reads (the class's
/// Secrets live in namespaces only admins write, and are read when a reconcile runs).
pub fn secret_names(env: &PreviewEnvironment) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for e in &env.spec.env {
        if let Some(from) = &e.value_from {
            names.insert(from.secret_key_ref.name.clone());
        }
    }
    names
}

/// The class name an environment uses, if it is known without a lookup.
pub fn class_name(env: &PreviewEnvironment) -> Option<&str> {
    env.status
        .as_ref()
        .and_then(|s| s.target.as_ref())
        .map(|t| t.class_name.as_str())
        .or(env.spec.class_name.as_deref())
}

fn violated(v: Violation) -> Error {
    Error::invalid(v.reason, v.message)
}

/// The PreviewClass the environment uses (recorded, named or default) and its name.
pub async fn class_of(env: &PreviewEnvironment, client: &kube::Client) -> Result<(String, PreviewClassSpec), Error> {
    let api: Api<PreviewClass> = Api::all(client.clone());
    let recorded = env.status.as_ref().and_then(|s| s.target.as_ref()).map(|t| t.class_name.as_str());
    let classes = match recorded.or(env.spec.class_name.as_deref()) {
        Some(name) => api.get_opt(name).await?.into_iter().collect(),
        None => api.list(&Default::default()).await?.items,
    };
    let class = class::select(recorded, env.spec.class_name.as_deref(), &classes).map_err(violated)?;
    Ok((class.name_any(), class.spec.clone()))
}

/// Reads a class's Secret key; a missing one stalls the environment like its own would.
async fn read_class_key(client: &kube::Client, r: &ClassSecretKeyRef, what: &str) -> Result<String, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &r.namespace);
    read_key(&api, &SecretKeyRef { name: r.name.clone(), key: r.key.clone() }, what).await
}

/// The Forge client for `target`, with the class's token.
async fn forge_for(
    pctx: &PreviewContext,
    class: &PreviewClassSpec,
    target: &RecordedTarget,
) -> Result<Arc<dyn ForgeApi>, Error> {
    let forge_config = pctx.ctx.config.forge.as_ref().ok_or_else(|| {
        Error::invalid("ForgeNotConfigured", "the operator config has no forge section; previews cannot be created")
    })?;
    let token = read_class_key(&pctx.ctx.client, &class.forge.token_secret_ref, "Forge token").await?;
    let mut settings = forge_config.clone();
    settings.base_url = target.base_url.clone();
    pctx.ctx.services.forge(&settings, &target.organization, token)
}

/// What teardown needs: the recorded target's Forge client, or `None` when the
/// environment never recorded one (then it never acted on Forge).
pub async fn for_teardown(
    env: &PreviewEnvironment,
    pctx: &PreviewContext,
) -> Result<Option<(Arc<dyn ForgeApi>, RecordedTarget)>, Error> {
    let Some(target) = env.status.as_ref().and_then(|s| s.target.clone()) else { return Ok(None) };
    let (_, class) = class_of(env, &pctx.ctx.client).await?;
    Ok(Some((forge_for(pctx, &class, &target).await?, target)))
}

pub async fn load(env: &PreviewEnvironment, pctx: &PreviewContext) -> Result<Inputs, Error> {
    let config = &pctx.ctx.config;
    let client = &pctx.ctx.client;
    let forge_config = config.forge.as_ref().ok_or_else(|| {
        Error::invalid("ForgeNotConfigured", "the operator config has no forge section; previews cannot be created")
    })?;
    let ns = env.namespace().unwrap_or_default();
    let (class_name, class) = class_of(env, client).await?;
    let labels = if class.namespaces.contains(&ns) || class.namespace_selector.is_none() {
        BTreeMap::new()
    } else {
        Api::<Namespace>::all(client.clone()).get_metadata(&ns).await?.metadata.labels.unwrap_or_default()
    };
    let spec = class::effective_spec(&class_name, &class, &ns, &labels, &env.spec).map_err(violated)?;
    let mut effective = env.clone();
    effective.spec = spec;
    let names = Names::derive(&effective.spec, forge_config.base_domain.as_deref())
        .map_err(|e| Error::invalid("InvalidName", e.to_string()))?;
    class::domain_allowed(&class_name, &class, &names.domain).map_err(violated)?;
    if let Some(pool) = effective.spec.redis.as_ref().and_then(|r| r.pool.as_deref()) {
        match config.pool(pool) {
            Some(p) if p.type_() == ResourceType::RedisDatabase => {}
            Some(_) => {
                return Err(Error::invalid("RedisPoolInvalid", format!("pool {pool} is not a RedisDatabase pool")));
            }
            None => {
                return Err(Error::invalid(
                    "RedisPoolNotFound",
                    format!("no pool named {pool} in the operator config"),
                ));
            }
        }
    }
    let target = match env.status.as_ref().and_then(|s| s.target.clone()) {
        Some(recorded) => recorded,
        None => RecordedTarget {
            class_name: class_name.clone(),
            base_url: class.forge.base_url.clone().unwrap_or_else(|| forge_config.base_url.clone()),
            organization: class.forge.organization.clone(),
            server_id: class.forge.server_id,
        },
    };
    let forge = forge_for(pctx, &class, &target).await?;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut entries = BTreeMap::new();
    for e in &env.spec.env {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => read_key(&secrets, &from.secret_key_ref, &format!("env {}", e.name)).await?,
            (None, None) => String::new(),
        };
        entries.insert(e.name.clone(), value);
    }
    let admin_url = match effective.spec.database.as_ref() {
        Some(db) if db.strategy == CloneStrategy::Clone => match &class.database.admin_credentials_secret_ref {
            Some(r) => Some(read_class_key(client, r, "database admin credentials").await?),
            None => {
                return Err(Error::invalid(
                    "AdminCredentialsMissing",
                    format!("strategy clone needs database.adminCredentialsSecretRef in PreviewClass {class_name}"),
                ));
            }
        },
        _ => None,
    };
    let credentials_secret = children::credentials_secret_name(env);
    let credentials = credentials(&secrets, env, &credentials_secret).await?;
    Ok(Inputs {
        effective,
        names,
        server: u64::try_from(target.server_id).unwrap_or(0),
        target,
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
