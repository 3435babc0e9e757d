//! Starts a local control plane (etcd + kube-apiserver + kube-controller-manager)
//! for the demo and for trying switchyard by hand; stops it on SIGINT or SIGTERM.
//!
//! Usage: `switchyard-control-plane [KUBECONFIG_OUT]` — copies the kubeconfig to
//! KUBECONFIG_OUT once the apiserver is ready (then prints `ready`).

use std::process::ExitCode;

use switchyard_testenv::ControlPlane;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> ExitCode {
    let out = std::env::args().nth(1);
    let cp = match ControlPlane::start().await {
        Ok(cp) => cp,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(out) = &out
        && let Err(e) = std::fs::copy(cp.kubeconfig_path(), out)
    {
        eprintln!("error: cannot write {out}: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "ready: {} (kubeconfig {})",
        cp.server_url(),
        out.as_deref().unwrap_or(&cp.kubeconfig_path().display().to_string())
    );
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        eprintln!("error: cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    drop(cp);
    ExitCode::SUCCESS
}
