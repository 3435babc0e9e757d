//! Server-side database cloning over a direct MySQL/MariaDB connection: the
//! `clone` strategy of a PreviewEnvironment's database.
//!
//! Rows never leave the server: each table is re-created from `SHOW CREATE TABLE`
//! and filled with `INSERT INTO target.t SELECT ... FROM snapshot.t`, several tables
//! at once on separate connections. Views and triggers follow. Every object is
//! dropped first, so a clone interrupted by a crash is simply run again.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Pool};

use super::BackendError;

const BACKEND: &str = "mysql";

/// What a clone copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloneReport {
    pub tables: usize,
    pub views: usize,
    pub triggers: usize,
}

fn error(context: &str, e: impl std::fmt::Display) -> BackendError {
    // mysql_async errors carry server messages, never the connection URL.
    BackendError { backend: BACKEND, message: format!("{context}: {e}") }
}

/// Backticks around an identifier, doubling embedded backticks.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A connection pool to the database server named by an admin URL (`mysql://user:pass@host:port`).
pub struct MysqlAdmin {
    pool: Pool,
}

impl MysqlAdmin {
    /// The URL holds a password: a parse failure must not echo it.
    pub fn new(url: &str) -> Result<Self, BackendError> {
        let opts = Opts::from_url(url.trim()).map_err(|_| BackendError {
            backend: BACKEND,
            message: "the admin credentials are not a valid mysql://user:password@host:port URL".into(),
        })?;
        Ok(Self { pool: Pool::new(opts) })
    }

    async fn conn(&self) -> Result<Conn, BackendError> {
        self.pool.get_conn().await.map_err(|e| error("connect", e))
    }

    /// Whether database `name` exists on the server.
    pub async fn database_exists(&self, name: &str) -> Result<bool, BackendError> {
        let mut conn = self.conn().await?;
        let found: Option<String> = conn
            .exec_first("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", (name,))
            .await
            .map_err(|e| error("look up database", e))?;
        Ok(found.is_some())
    }

    /// Copies schema and rows of `snapshot` into the existing database `target`,
    /// `parallelism` tables at a time, then its views and triggers.
    pub async fn clone_database(
        &self,
        snapshot: &str,
        target: &str,
        parallelism: usize,
    ) -> Result<CloneReport, BackendError> {
        if !self.database_exists(snapshot).await? {
            return Err(BackendError {
                backend: BACKEND,
                message: format!("snapshot database {snapshot} does not exist"),
            });
        }
        let mut conn = self.conn().await?;
        let objects: Vec<(String, String)> = conn
            .exec(
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
                (snapshot,),
            )
            .await
            .map_err(|e| error("list snapshot tables", e))?;
        let tables: Vec<String> = objects.iter().filter(|(_, t)| t == "BASE TABLE").map(|(n, _)| n.clone()).collect();
        let views: Vec<String> = objects.iter().filter(|(_, t)| t == "VIEW").map(|(n, _)| n.clone()).collect();

        // Views first out of the way (they may depend on tables being replaced).
        for view in &views {
            conn.query_drop(format!("DROP VIEW IF EXISTS {}.{}", quote_ident(target), quote_ident(view)))
                .await
                .map_err(|e| error("drop view", e))?;
        }
        // Owned names: a closure over `&String` makes the future's Send bound higher-ranked.
        futures::stream::iter(tables.clone())
            .map(|table| async move { self.copy_table(snapshot, target, &table).await })
            .buffer_unordered(parallelism.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        let views_done = self.copy_views(&mut conn, snapshot, target, &views).await?;
        let triggers = self.copy_triggers(&mut conn, snapshot, target).await?;
        Ok(CloneReport { tables: tables.len(), views: views_done, triggers })
    }

    async fn copy_table(&self, snapshot: &str, target: &str, table: &str) -> Result<(), BackendError> {
        let mut conn = self.conn().await?;
        let (src, dst) = (quote_ident(snapshot), quote_ident(target));
        let t = quote_ident(table);
        let (_, create): (String, String) = conn
            .query_first(format!("SHOW CREATE TABLE {src}.{t}"))
            .await
            .map_err(|e| error("read table definition", e))?
            .ok_or_else(|| error("read table definition", format!("{table} vanished")))?;
        // Generated columns cannot be inserted into; they recompute themselves.
        let columns: Vec<String> = conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
                 AND EXTRA NOT LIKE '%GENERATED%' ORDER BY ORDINAL_POSITION",
                (snapshot, table),
            )
            .await
            .map_err(|e| error("list columns", e))?;
        let columns = columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
        let script = format!(
            "SET SESSION foreign_key_checks = 0; USE {dst}; DROP TABLE IF EXISTS {t}; {create}; \
             INSERT INTO {dst}.{t} ({columns}) SELECT {columns} FROM {src}.{t};"
        );
        conn.query_drop(script).await.map_err(|e| error(&format!("copy table {table}"), e))?;
        Ok(())
    }

    /// Views can read other views: create them in passes until none is left or a
    /// pass makes no progress (then report the first error).
    async fn copy_views(
        &self,
        conn: &mut Conn,
        snapshot: &str,
        target: &str,
        views: &[String],
    ) -> Result<usize, BackendError> {
        let mut definitions = BTreeMap::new();
        for view in views {
            let row: Option<(String, String, String, String)> = conn
                .query_first(format!("SHOW CREATE VIEW {}.{}", quote_ident(snapshot), quote_ident(view)))
                .await
                .map_err(|e| error("read view definition", e))?;
            if let Some((_, create, _, _)) = row {
                definitions.insert(view.clone(), retarget(&strip_definer(&create), snapshot, target));
            }
        }
        let total = definitions.len();
        conn.query_drop(format!("USE {}", quote_ident(target))).await.map_err(|e| error("use target", e))?;
        while !definitions.is_empty() {
            let mut last_error = None;
            let mut created = Vec::new();
            for (view, create) in &definitions {
                match conn.query_drop(create.as_str()).await {
                    Ok(()) => created.push(view.clone()),
                    Err(e) => last_error = Some(error(&format!("create view {view}"), e)),
                }
            }
            if created.is_empty() {
                return Err(last_error.unwrap_or_else(|| error("create views", "no progress")));
            }
            for view in created {
                definitions.remove(&view);
            }
        }
        Ok(total)
    }

    async fn copy_triggers(&self, conn: &mut Conn, snapshot: &str, target: &str) -> Result<usize, BackendError> {
        let names: Vec<String> = conn
            .exec("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", (snapshot,))
            .await
            .map_err(|e| error("list triggers", e))?;
        conn.query_drop(format!("USE {}", quote_ident(target))).await.map_err(|e| error("use target", e))?;
        for name in &names {
            let row: Option<mysql_async::Row> = conn
                .query_first(format!("SHOW CREATE TRIGGER {}.{}", quote_ident(snapshot), quote_ident(name)))
                .await
                .map_err(|e| error("read trigger", e))?;
            let Some(statement) = row.and_then(|r| r.get::<String, usize>(2)) else { continue };
            conn.query_drop(format!("DROP TRIGGER IF EXISTS {}", quote_ident(name)))
                .await
                .map_err(|e| error("drop trigger", e))?;
            conn.query_drop(retarget(&strip_definer(&statement), snapshot, target))
                .await
                .map_err(|e| error(&format!("create trigger {name}"), e))?;
        }
        Ok(names.len())
    }

    /// Closes the pool's connections.
    pub async fn disconnect(self) {
        let _ = self.pool.disconnect().await;
    }
}

/// Drops a `DEFINER=...` clause, so the object is owned by the account that clones.
fn strip_definer(sql: &str) -> String {
    let Some(start) = sql.find("DEFINER=") else { return sql.to_string() };
    let rest = &sql[start..];
    // The clause ends at the first space outside backticks/quotes: `user`@`host`.
    let mut quoted: Option<char> = None;
    let mut end = rest.len();
    for (i, c) in rest.char_indices() {
        match (quoted, c) {
            (None, '`' | '\'') => quoted = Some(c),
            (Some(q), c) if c == q => quoted = None,
            (None, ' ') => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    format!("{}{}", &sql[..start], rest[end..].trim_start())
}

/// Rewrites references qualified with the snapshot's name to the target's.
fn retarget(sql: &str, snapshot: &str, target: &str) -> String {
    sql.replace(&format!("{}.", quote_ident(snapshot)), &format!("{}.", quote_ident(target)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definer_is_stripped_and_schema_retargeted() {
        let view = "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select `snap`.`t`.`id` AS `id` from `snap`.`t`";
        let out = retarget(&strip_definer(view), "snap", "pr_1");
        assert_eq!(
            out,
            "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select `pr_1`.`t`.`id` AS `id` from `pr_1`.`t`"
        );
        assert_eq!(strip_definer("CREATE VIEW x AS select 1"), "CREATE VIEW x AS select 1");
        assert_eq!(quote_ident("a`b"), "`a``b`");
    }

    #[test]
    fn a_bad_url_never_echoes_the_password() {
        let Err(e) = MysqlAdmin::new("not a url with s3cret") else { panic!("accepted") };
        assert!(!e.to_string().contains("s3cret"));
    }
}
