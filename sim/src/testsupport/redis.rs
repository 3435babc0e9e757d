//! A throwaway `redis-server` on a free loopback port, no persistence.

use super::{ChildGuard, LaunchError, find_binary, free_port, tail, wait_for};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A running Redis. Dropping it kills the server, then deletes its directory (field order).
pub struct Redis {
    _child: ChildGuard,
    dir: tempfile::TempDir,
    port: u16,
}

fn pong(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

impl Redis {
    pub fn start() -> Result<Self, LaunchError> {
        let bin = find_binary("redis-server", &["/usr/bin/redis-server"])?;
        let dir = tempfile::Builder::new().prefix("switchyard-redis-").tempdir()?;
        let mut last_err = None;
        for _ in 0..3 {
            let port = free_port()?;
            let log = dir.path().join("redis.log");
            let child = Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let mut guard = ChildGuard(child);
            let ready = wait_for("redis-server", Duration::from_secs(20), || {
                if let Some(status) = guard.exited() {
                    return Err(LaunchError::Failed {
                        what: format!("redis-server (exit {status})"),
                        detail: tail(&log, 10),
                    });
                }
                Ok(pong(port).then_some(()))
            });
            match ready {
                Ok(()) => {
                    return Ok(Redis { _child: guard, dir, port });
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or(LaunchError::Failed { what: "redis-server".into(), detail: "no attempt".into() }))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("port", &self.port).field("dir", &self.dir.path()).finish_non_exhaustive()
    }
}
