//! The Redis side of RedisDatabase pools: the server a pool names (its URL read from
//! a Secret on each use, so a rotation needs no restart), its database count, and
//! `FLUSHDB` of a released database.

use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tracing::{info, warn};

use crate::api::shared_resource_claim::ResourceType;
use crate::backends::redis::RedisServer;
use crate::controller::Error;
use crate::controller::kit::k8s::read_secret_key;
use crate::logic::allocation::{self, Pool, PoolKind};

use super::{ClaimContext, REDIS_COUNT_TTL};

/// Cleans up the data of a value nobody holds any more.
pub(super) async fn reclaim(cctx: &ClaimContext, pool: &Pool, value: &str) -> Result<(), Error> {
    if pool.type_() != ResourceType::RedisDatabase {
        return Ok(());
    }
    let Ok(db) = value.parse::<u32>() else { return Ok(()) };
    if !allocation::flushable(pool, db) {
        warn!(pool = %pool.name, db, "refusing to flush a reserved database");
        return Ok(());
    }
    redis_server(cctx, pool).await?.flush_database(db).await?;
    info!(pool = %pool.name, db, "flushed released Redis database");
    Ok(())
}

/// The Redis server of a pool, from the Secret its config names.
pub(super) async fn redis_server(cctx: &ClaimContext, pool: &Pool) -> Result<RedisServer, Error> {
    let PoolKind::RedisDatabase { redis_url_secret_ref: secret_ref, .. } = &pool.kind else {
        return Err(Error::invalid("PoolMisconfigured", format!("pool {} is not a RedisDatabase pool", pool.name)));
    };
    let secrets: Api<Secret> = Api::namespaced(cctx.ctx.client.clone(), &secret_ref.namespace);
    // Waiting, not Stalled: the Secret is the platform team's, and its arrival wakes nothing here.
    let url = read_secret_key(&secrets, &secret_ref.name, &secret_ref.key)
        .await?
        .map_err(|p| Error::Waiting(format!("{p} (the Redis URL of pool {})", pool.name)))?;
    Ok(RedisServer::new(url.trim()))
}

pub(super) async fn redis_count(cctx: &ClaimContext, pool: &Pool) -> Result<u32, Error> {
    if let Some((count, at)) = cctx.redis_counts.lock().ok().and_then(|m| m.get(&pool.name).copied())
        && at.elapsed() < REDIS_COUNT_TTL
    {
        return Ok(count);
    }
    let count = redis_server(cctx, pool).await?.database_count().await?;
    if let Ok(mut m) = cctx.redis_counts.lock() {
        m.insert(pool.name.clone(), (count, Instant::now()));
    }
    Ok(count)
}
