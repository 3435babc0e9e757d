//! Real side effects in MariaDB/MySQL for schemas and database users, so tests can
//! check what a Forge server would actually contain.

use mysql_async::prelude::Queryable;
use mysql_async::{Opts, Pool};

#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    #[error("invalid MySQL URL: {0}")]
    Url(String),
    #[error("MySQL: {0}")]
    Query(#[from] mysql_async::Error),
    #[error("refusing unsafe identifier")]
    UnsafeIdentifier,
}

/// Backticks around an identifier, doubling embedded backticks (MySQL's quoting rule).
/// Names are validated as alpha-dash before they get here; this is the second fence.
pub fn quote_ident(name: &str) -> Result<String, MysqlError> {
    if name.is_empty() || name.contains('\0') || name.len() > 64 {
        return Err(MysqlError::UnsafeIdentifier);
    }
    Ok(format!("`{}`", name.replace('`', "``")))
}

/// `mysql_native_password` hash (`*` + hex(SHA1(SHA1(pw)))). MariaDB cannot bind a password
/// as a statement parameter, and a hex hash is safe to splice where a password is not.
pub fn native_password_hash(password: &str) -> String {
    use sha1::{Digest, Sha1};
    let once = Sha1::digest(password.as_bytes());
    format!("*{}", hex::encode_upper(Sha1::digest(once)))
}

/// A single-quoted account name part; only alpha-dash names are accepted.
fn quote_account(name: &str) -> Result<String, MysqlError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(MysqlError::UnsafeIdentifier);
    }
    Ok(format!("'{name}'@'%'"))
}

#[derive(Clone)]
pub struct MysqlBackend {
    pool: Pool,
}

impl MysqlBackend {
    pub fn new(url: &str) -> Result<Self, MysqlError> {
        let opts = Opts::from_url(url).map_err(|e| MysqlError::Url(e.to_string()))?;
        Ok(Self { pool: Pool::new(opts) })
    }

    pub async fn create_database(&self, name: &str) -> Result<(), MysqlError> {
        let mut conn = self.pool.get_conn().await?;
        conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(name)?)).await?;
        Ok(())
    }

    pub async fn drop_database(&self, name: &str) -> Result<(), MysqlError> {
        let mut conn = self.pool.get_conn().await?;
        conn.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(name)?)).await?;
        Ok(())
    }

    /// Create the account and grant it `databases`. The password travels only as its hash.
    pub async fn create_user(
        &self,
        name: &str,
        password: &str,
        databases: &[String],
        read_only: bool,
    ) -> Result<(), MysqlError> {
        let account = quote_account(name)?;
        let mut conn = self.pool.get_conn().await?;
        conn.query_drop(format!(
            "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY PASSWORD '{}'",
            native_password_hash(password)
        ))
        .await?;
        for db in databases {
            Self::grant(&mut conn, &account, db, read_only).await?;
        }
        Ok(())
    }

    async fn grant(conn: &mut mysql_async::Conn, account: &str, db: &str, read_only: bool) -> Result<(), MysqlError> {
        let privileges = if read_only { "SELECT" } else { "ALL PRIVILEGES" };
        conn.query_drop(format!("GRANT {privileges} ON {}.* TO {account}", quote_ident(db)?)).await?;
        Ok(())
    }

    /// PUT user: new password when given; `databases` replaces the grants when given.
    pub async fn update_user(
        &self,
        name: &str,
        password: Option<&str>,
        databases: Option<&[String]>,
        read_only: bool,
    ) -> Result<(), MysqlError> {
        let account = quote_account(name)?;
        let mut conn = self.pool.get_conn().await?;
        if let Some(pw) = password {
            conn.query_drop(format!("ALTER USER {account} IDENTIFIED BY PASSWORD '{}'", native_password_hash(pw)))
                .await?;
        }
        if let Some(dbs) = databases {
            conn.query_drop(format!("REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account}")).await?;
            for db in dbs {
                Self::grant(&mut conn, &account, db, read_only).await?;
            }
        }
        Ok(())
    }

    pub async fn drop_user(&self, name: &str) -> Result<(), MysqlError> {
        let account = quote_account(name)?;
        let mut conn = self.pool.get_conn().await?;
        conn.query_drop(format!("DROP USER IF EXISTS {account}")).await?;
        Ok(())
    }

    pub async fn disconnect(self) {
        let _ = self.pool.disconnect().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_unsafe_accounts_refused() {
        assert_eq!(quote_ident("pr_1").unwrap(), "`pr_1`");
        assert_eq!(quote_ident("a`b").unwrap(), "`a``b`");
        assert!(quote_account("x'@'%").is_err());
        assert_eq!(quote_account("pr-1").unwrap(), "'pr-1'@'%'");
        // Known value: PASSWORD('password') in MySQL/MariaDB.
        assert_eq!(native_password_hash("password"), "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19");
    }
}
