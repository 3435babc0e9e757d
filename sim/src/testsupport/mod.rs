//! Real backing services for tests, started on free loopback ports in temp dirs and
//! killed (with the temp dir removed) on drop, including during a panic unwind.
//! Enable with the `testsupport` feature.

pub mod mariadb;
pub mod redis;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Why a service could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0} not found (run e2e/install-deps.sh)")]
    MissingBinary(&'static str),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{what} failed: {detail}")]
    Failed { what: String, detail: String },
    #[error("{what} not ready after {after:?}: {detail}")]
    Timeout { what: String, after: Duration, detail: String },
}

/// First existing candidate, else a `PATH` lookup.
pub fn find_binary(name: &'static str, candidates: &[&str]) -> Result<PathBuf, LaunchError> {
    for c in candidates {
        let p = PathBuf::from(c);
        if p.is_file() {
            return Ok(p);
        }
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
        .ok_or(LaunchError::MissingBinary(name))
}

/// A port that was free a moment ago (the OS picks it; collisions are retried by callers).
pub fn free_port() -> Result<u16, LaunchError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Poll `check` until it returns `Ok(Some(v))`, an error, or the deadline passes.
/// The sleep between polls is a polling interval, not synchronisation.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>, LaunchError>,
) -> Result<T, LaunchError> {
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(10);
    loop {
        if let Some(v) = check()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(LaunchError::Timeout {
                what: what.into(),
                after: timeout,
                detail: "condition never held".into(),
            });
        }
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(200));
    }
}

pub(crate) fn accepts_tcp(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200)).is_ok()
}

/// The last `n` lines of a log file, for error messages.
pub(crate) fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Kills and reaps a child process when dropped.
pub(crate) struct ChildGuard(pub std::process::Child);

impl ChildGuard {
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
