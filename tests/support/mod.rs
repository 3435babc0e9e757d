//! Shared by the integration tests: a `switchyard run` process.
#![allow(dead_code)]

pub mod bridge;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchyard_testenv::{ControlPlane, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A running `switchyard run`, killed on drop if the test did not stop it.
pub struct Operator {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Operator {
    /// Starts `switchyard run` with the config `config(port)` returns for its HTTP port.
    pub fn start(cp: &ControlPlane, config: impl Fn(u16) -> String) -> Self {
        Self::start_with_kubeconfig(cp.kubeconfig_path(), config)
    }

    /// Like [`Operator::start`], with the credentials of `kubeconfig` (a ServiceAccount's, say).
    pub fn start_with_kubeconfig(kubeconfig: &std::path::Path, config: impl Fn(u16) -> String) -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, config(port)).expect("write config");
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        die_with_test(&mut command);
        let child = command
            .args(["run", "--config"])
            .arg(&config_path)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", std::env::var("SWITCHYARD_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("operator.log")).expect("log file"))
            .spawn()
            .expect("spawn switchyard");
        Self { child, port, _dir: dir }
    }

    /// `http://127.0.0.1:<port><path>` on the operator's HTTP server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::get(format!("http://127.0.0.1:{}{path}", self.port)).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    pub fn sigterm(&self) {
        // SAFETY: sending a signal to our own child by pid has no memory effects.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
    }

    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        wait_for(TIMEOUT, "operator to exit", || {
            let status = self.child.try_wait().ok().flatten();
            async move { status }
        })
        .await
        .expect("operator exits")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("operator.log")).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- operator log (port {}) ---\n{}", self.port, self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// The operator dies with the test thread that started it, even when the test
/// process is killed before `Drop` runs.
fn die_with_test(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
}
