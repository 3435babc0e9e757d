//! `switchyard run` as a real process against a real apiserver: readiness, the
//! leader Lease, metrics, standby, clean SIGTERM, and config errors.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use switchyard::api;
use switchyard_testenv::{ControlPlane, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A running `switchyard run`, killed on drop if the test did not stop it.
struct Operator {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Operator {
    fn start(cp: &ControlPlane, lease_namespace: &str) -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "server:\n  listen: 127.0.0.1:{port}\nleaderElection:\n  namespace: {lease_namespace}\n  leaseDuration: 4s\n  retryPeriod: 500ms\n"
            ),
        )
        .expect("write config");
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["run", "--config"])
            .arg(&config)
            .env("KUBECONFIG", cp.kubeconfig_path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("operator.log")).expect("log file"))
            .spawn()
            .expect("spawn switchyard");
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::get(format!("http://127.0.0.1:{}{path}", self.port))
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    fn sigterm(&self) {
        // SAFETY: sending a signal to our own child by pid has no memory effects.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
    }

    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        wait_for(TIMEOUT, "operator to exit", || {
            let status = self.child.try_wait().ok().flatten();
            async move { status }
        })
        .await
        .expect("operator exits")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("operator.log")).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn lease_holder(cp: &ControlPlane, ns: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(cp.client(), ns);
    leases
        .get_opt("switchyard-leader")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

#[tokio::test]
async fn run_leads_serves_metrics_stands_by_and_stops_on_sigterm() {
    let cp = ControlPlane::shared().await.expect("control plane");
    cp.apply_crds(&api::all_crds()).await.expect("CRDs");
    let ns = cp
        .create_unique_namespace("leader")
        .await
        .expect("namespace");

    let mut first = Operator::start(cp, &ns);
    wait_for(TIMEOUT, "first replica /readyz", || async {
        first.get("/readyz").await.is_some_and(|(s, _)| s == 200)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", first.log()));
    let holder = wait_for(TIMEOUT, "the Lease to be held", || lease_holder(cp, &ns))
        .await
        .expect("lease");
    wait_for(TIMEOUT, "first replica to report leadership", || async {
        first
            .get("/metrics")
            .await
            .and_then(|(_, m)| metric(&m, "switchyard_leader"))
            == Some(1.0)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", first.log()));
    assert_eq!(first.get("/healthz").await.map(|(s, _)| s), Some(200));

    let mut second = Operator::start(cp, &ns);
    wait_for(TIMEOUT, "second replica /readyz", || async {
        second.get("/readyz").await.is_some_and(|(s, _)| s == 200)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", second.log()));
    // Several renewals later the first still holds the Lease and the second waits.
    let leases: Api<Lease> = Api::namespaced(cp.client(), &ns);
    let mut last: Option<String> = None;
    for _ in 0..3 {
        let renewed = wait_for(TIMEOUT, "a Lease renewal", || {
            let (leases, last) = (leases.clone(), last.clone());
            async move {
                let rv = leases
                    .get("switchyard-leader")
                    .await
                    .ok()?
                    .metadata
                    .resource_version;
                rv.filter(|rv| Some(rv) != last.as_ref())
            }
        })
        .await
        .expect("lease renewed");
        last = Some(renewed);
    }
    assert_eq!(
        lease_holder(cp, &ns).await.as_deref(),
        Some(holder.as_str()),
        "leader changed while healthy"
    );
    let standby_metrics = second
        .get("/metrics")
        .await
        .expect("standby serves /metrics")
        .1;
    assert_eq!(
        metric(&standby_metrics, "switchyard_leader"),
        Some(0.0),
        "standby claims leadership"
    );

    first.sigterm();
    let status = first.wait_exit().await;
    assert!(
        status.success(),
        "SIGTERM exit was {status:?}\n{}",
        first.log()
    );
    assert!(
        first.log().contains("released leadership"),
        "{}",
        first.log()
    );

    // The released Lease goes to the standby without waiting for expiry.
    let new_holder = wait_for(TIMEOUT, "standby to take over", || async {
        lease_holder(cp, &ns).await.filter(|h| *h != holder)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", second.log()));
    wait_for(TIMEOUT, "standby to report leadership", || async {
        second
            .get("/metrics")
            .await
            .and_then(|(_, m)| metric(&m, "switchyard_leader"))
            == Some(1.0)
    })
    .await
    .expect("standby leads");
    assert_ne!(new_holder, holder);

    second.sigterm();
    assert!(second.wait_exit().await.success(), "{}", second.log());
}

#[test]
fn bad_config_exits_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("controller:\n  concurrency: 0\n", "controller.concurrency"),
        (
            "leaderElection:\n  leaseDuration: soon\n",
            "leaderElection.leaseDuration",
        ),
        (
            "pools:\n  - name: ports\n    type: Port\n",
            "pools[0].range",
        ),
        ("server:\n  lisen: 0.0.0.0:1\n", "lisen"),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("config-{i}.yaml"));
        std::fs::write(&path, text).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["run", "--config"])
            .arg(&path)
            .env("KUBECONFIG", "/nonexistent")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {stderr}");
        assert!(
            stderr.contains(key),
            "message does not name {key}: {stderr}"
        );
    }
    let missing = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["run", "--config"])
        .arg(Path::new("/nonexistent/config.yaml"))
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/config.yaml"));
}
