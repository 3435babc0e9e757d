//! Lifecycle of private (non-shared) control planes: they start, work, and leave no process
//! or directory behind when dropped — also when the test panics.

use std::path::PathBuf;
use std::time::Instant;

use switchyard_testenv::{ControlPlane, K8S_VERSION};

/// The tests below count this process's children, so they must not overlap.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn pid_alive(pid: u32) -> bool {
    // A reaped child has no /proc entry; a zombie would still have one, so check its state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn child_pids() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            && let Some((_, rest)) = stat.rsplit_once(')')
            && rest.split_whitespace().nth(1) == Some(&me.to_string())
        {
            out.push(pid);
        }
    }
    out
}

#[tokio::test]
async fn private_plane_starts_and_cleans_up_on_drop() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let t = Instant::now();
    let cp = ControlPlane::start().await?;
    eprintln!(
        "private control plane started in {:.2?} (call took {:.2?})",
        cp.startup_time(),
        t.elapsed()
    );
    let info = cp.client().apiserver_version().await?;
    assert_eq!(info.git_version, format!("v{K8S_VERSION}"));
    let kubeconfig = std::fs::read_to_string(cp.kubeconfig_path())?;
    assert!(kubeconfig.contains(cp.server_url()));

    let dir: PathBuf = cp.dir().to_path_buf();
    let pids = child_pids();
    assert!(
        pids.len() >= 3,
        "expected etcd, apiserver, kcm children: {pids:?}"
    );
    drop(cp);
    for pid in pids {
        assert!(!pid_alive(pid), "process {pid} survived drop");
    }
    assert!(!dir.exists(), "{} survived drop", dir.display());
    Ok(())
}

#[tokio::test]
async fn cleans_up_when_the_test_panics() {
    let _serial = SERIAL.lock().await;
    let (tx, rx) = std::sync::mpsc::channel();
    // Run a "test" that panics while holding a control plane, on its own thread and runtime.
    let handle = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let cp = ControlPlane::start().await.expect("start");
                tx.send((cp.dir().to_path_buf(), child_pids())).unwrap();
                panic!("simulated test failure");
            })
    });
    assert!(
        handle.join().is_err(),
        "the inner test should have panicked"
    );
    let (dir, pids) = rx.recv().unwrap();
    assert!(!pids.is_empty());
    for pid in pids {
        assert!(!pid_alive(pid), "process {pid} survived a panicking test");
    }
    assert!(!dir.exists(), "{} survived a panicking test", dir.display());
}

#[test]
fn missing_binaries_give_a_helpful_error() {
    let err = switchyard_testenv::Assets::from_dir(std::path::Path::new("/nonexistent"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("e2e/build-control-plane.sh"), "{err}");
    assert!(err.contains("/nonexistent/kube-apiserver"), "{err}");
}

#[tokio::test]
async fn startup_failure_reports_the_log_tail_and_cleans_up() {
    let _serial = SERIAL.lock().await;
    let options = switchyard_testenv::Options {
        extra_apiserver_args: vec!["--no-such-flag".into()],
        ..Default::default()
    };
    let err = ControlPlane::start_with(options).await.unwrap_err();
    let msg = format!("{err:#}");
    eprintln!("{msg}");
    assert!(
        msg.contains("kube-apiserver exited during startup"),
        "{msg}"
    );
    assert!(msg.contains("last lines of kube-apiserver log"), "{msg}");
    assert!(msg.contains("unknown flag: --no-such-flag"), "{msg}");
    assert!(
        child_pids().iter().all(|p| !pid_alive(*p)),
        "etcd survived a failed start"
    );
}
