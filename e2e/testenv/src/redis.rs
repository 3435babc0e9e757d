//! A real `redis-server` (Debian's package) on a free loopback port.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::Proc;

/// A running redis-server, killed and its directory removed on drop.
pub struct RedisProcess {
    proc: Proc,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisProcess {
    /// Starts redis-server with `databases` numbered databases, persistence off.
    pub async fn start(databases: u32) -> Result<Self> {
        let binary = which("redis-server").context("redis-server is not installed: run e2e/install-deps.sh")?;
        let dir = tempfile::Builder::new().prefix("switchyard-redis-").tempdir()?;
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--databases",
                &databases.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &dir.path().display().to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let mut proc = Proc::spawn("redis-server", &binary, &args, dir.path().join("redis.log"))?;
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while std::time::Instant::now() < deadline {
                if let Some(status) = proc.exited() {
                    let log = std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default();
                    if log.contains("Address already in use") {
                        break;
                    }
                    bail!("redis-server exited ({status}):\n{log}");
                }
                if ping(port).await {
                    return Ok(Self { proc, port, _dir: dir });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            proc.kill();
        }
        bail!("redis-server did not start")
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.proc.kill();
    }
}

async fn ping(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return false };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).await.is_ok() && &buf == b"+PONG\r\n"
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
