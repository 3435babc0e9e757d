//! The shared Redis whose numbered databases are handed out by `RedisDatabase` pools.

use redis::{AsyncCommands, Client};

use super::BackendError;

/// A Redis server reached through a URL that may carry a password. The URL is
/// kept out of `Debug` and out of every error.
pub struct RedisServer {
    url: String,
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisServer { url: <redacted> }")
    }
}

fn error(context: &str, e: redis::RedisError) -> BackendError {
    // RedisError's text can echo connection details; keep only its kind and code.
    let detail = e.code().map(str::to_string).unwrap_or_else(|| format!("{:?}", e.kind()));
    BackendError { backend: "redis", message: format!("{context}: {detail}") }
}

impl RedisServer {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into() }
    }

    fn client(&self, db: Option<u32>) -> Result<Client, BackendError> {
        let mut info: redis::ConnectionInfo = self
            .url
            .as_str()
            .parse()
            .map_err(|_| BackendError { backend: "redis", message: "the Redis URL is not valid".into() })?;
        if let Some(db) = db {
            let settings = info.redis_settings().clone().set_db(i64::from(db));
            info = info.set_redis_settings(settings);
        }
        Client::open(info).map_err(|e| error("cannot open a client", e))
    }

    /// Number of databases the server has (`CONFIG GET databases`).
    pub async fn database_count(&self) -> Result<u32, BackendError> {
        let mut conn =
            self.client(None)?.get_multiplexed_async_connection().await.map_err(|e| error("cannot connect", e))?;
        let reply: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("databases")
            .query_async(&mut conn)
            .await
            .map_err(|e| error("CONFIG GET databases failed", e))?;
        reply
            .get(1)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| BackendError { backend: "redis", message: "CONFIG GET databases gave no number".into() })
    }

    /// Empties database `db` and nothing else: a dedicated connection that selects
    /// `db` when it opens, and `SELECT db` + `FLUSHDB` in one transaction on it.
    pub async fn flush_database(&self, db: u32) -> Result<(), BackendError> {
        let mut conn =
            self.client(Some(db))?.get_multiplexed_async_connection().await.map_err(|e| error("cannot connect", e))?;
        let _: () = redis::pipe()
            .atomic()
            .cmd("SELECT")
            .arg(db)
            .ignore()
            .cmd("FLUSHDB")
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(|e| error(&format!("FLUSHDB of database {db} failed"), e))?;
        Ok(())
    }

    /// Number of keys in database `db` (tests and diagnostics).
    pub async fn key_count(&self, db: u32) -> Result<u64, BackendError> {
        let mut conn =
            self.client(Some(db))?.get_multiplexed_async_connection().await.map_err(|e| error("cannot connect", e))?;
        let _: () = redis::cmd("SELECT").arg(db).query_async(&mut conn).await.map_err(|e| error("SELECT failed", e))?;
        let n: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.map_err(|e| error("DBSIZE failed", e))?;
        let _ = conn.ping::<String>().await;
        Ok(n)
    }
}
