//! A throwaway MariaDB server: `mariadb-install-db` into a temp datadir, `mariadbd` on a free
//! loopback port, root reachable over TCP with a password.

use super::{ChildGuard, LaunchError, accepts_tcp, find_binary, free_port, tail, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A running MariaDB. Dropping it kills the server and deletes its data directory.
pub struct MariaDb {
    // Field order matters: the process dies before its directory is removed.
    _child: ChildGuard,
    dir: tempfile::TempDir,
    port: u16,
    password: String,
    client: PathBuf,
}

fn run(what: &str, cmd: &mut Command) -> Result<String, LaunchError> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(LaunchError::Failed {
            what: what.into(),
            detail: format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn current_user() -> String {
    std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
        Command::new("id")
            .arg("-un")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "root".into())
    })
}

impl MariaDb {
    /// Start a fresh server (about 2–5 s). Fails fast with the error log if it dies.
    pub fn start() -> Result<Self, LaunchError> {
        let install = find_binary("mariadb-install-db", &["/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"])?;
        let server = find_binary("mariadbd", &["/usr/sbin/mariadbd", "/usr/sbin/mysqld"])?;
        let client = find_binary("mariadb", &["/usr/bin/mariadb", "/usr/bin/mysql"])?;
        let dir = tempfile::Builder::new().prefix("switchyard-mariadb-").tempdir()?;
        let data = dir.path().join("data");
        let user = current_user();
        // A private tmpdir: concurrent bootstraps in a shared /tmp collide on temp table names.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp)?;
        run(
            "mariadb-install-db",
            Command::new(&install)
                .env("TMPDIR", &tmp)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg("--auth-root-authentication-method=normal")
                .arg("--skip-test-db")
                .arg(format!("--user={user}")),
        )?;
        let mut last_err = None;
        for _ in 0..3 {
            let port = free_port()?;
            match Self::launch(&server, dir.path(), &data, port, &user) {
                Ok(child) => {
                    let password = format!("pw{}", std::process::id());
                    let db = MariaDb { _child: child, dir, port, password, client };
                    db.set_root_password()?;
                    return Ok(db);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or(LaunchError::Failed { what: "mariadbd".into(), detail: "no attempt".into() }))
    }

    fn launch(server: &Path, dir: &Path, data: &Path, port: u16, user: &str) -> Result<ChildGuard, LaunchError> {
        let log = dir.join("error.log");
        let child = Command::new(server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--tmpdir={}", dir.join("tmp").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--skip-name-resolve")
            .arg("--innodb-buffer-pool-size=32M")
            .arg("--innodb-log-file-size=16M")
            .arg("--skip-log-bin")
            .arg(format!("--user={user}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut guard = ChildGuard(child);
        wait_for("mariadbd", Duration::from_secs(60), || {
            if let Some(status) = guard.exited() {
                return Err(LaunchError::Failed { what: format!("mariadbd (exit {status})"), detail: tail(&log, 20) });
            }
            Ok(accepts_tcp(port).then_some(()))
        })?;
        Ok(guard)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    /// Root over the socket has no password after install; give TCP root one.
    fn set_root_password(&self) -> Result<(), LaunchError> {
        let pw = &self.password;
        self.sql_socket(&format!(
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';\
             ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{pw}';\
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\
             FLUSH PRIVILEGES;"
        ))
        .map(drop)
    }

    fn sql_socket(&self, sql: &str) -> Result<String, LaunchError> {
        run(
            "mariadb client",
            Command::new(&self.client)
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket().display()))
                .args(["-uroot", "-N", "-B", "-e", sql]),
        )
    }

    /// Run SQL as root (over the socket) and return tab-separated rows.
    pub fn query(&self, sql: &str) -> Result<Vec<Vec<String>>, LaunchError> {
        let out = self.sql_socket(sql)?;
        Ok(out.lines().map(|l| l.split('\t').map(str::to_string).collect()).collect())
    }

    pub fn database_exists(&self, name: &str) -> Result<bool, LaunchError> {
        Ok(self.query("SHOW DATABASES")?.iter().any(|r| r.first().is_some_and(|c| c == name)))
    }

    pub fn user_exists(&self, name: &str) -> Result<bool, LaunchError> {
        Ok(self.query("SELECT User FROM mysql.user")?.iter().any(|r| r.first().is_some_and(|c| c == name)))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://root:<pw>@127.0.0.1:<port>` (for `switchyard-sim forge --mysql-url`).
    pub fn url(&self) -> String {
        format!("mysql://root:{}@127.0.0.1:{}", self.password, self.port)
    }
}

impl std::fmt::Debug for MariaDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MariaDb").field("port", &self.port).field("dir", &self.dir.path()).finish_non_exhaustive()
    }
}
