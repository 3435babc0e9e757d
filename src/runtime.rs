//! `switchyard run`: config, HTTP server, CRD wait, leader election, controllers,
//! and graceful shutdown on SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::leader::{self, LeaderElection};
use crate::metrics::Metrics;
use crate::server::{self, ServerState};
use crate::{api, controller, telemetry};

/// How long in-flight reconciles may take to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Entry point of `switchyard run`; exit code 2 for a bad config, 1 for a runtime failure.
pub fn main(config_path: PathBuf) -> ExitCode {
    telemetry::init();
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "switchyard stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(forward_signals(stop_tx.clone()));

    let client = Client::try_default().await?;
    let metrics = Arc::new(Metrics::default());
    // Webhooks are served by every replica (the apiserver arbitrates their writes);
    // the poller and the comment controller run on the leader only.
    let github = config.github.clone().map(|gh| crate::github::Github::new(client.clone(), gh, metrics.clone()));
    let state = ServerState::with_github(metrics.clone(), github.clone());
    let addr: SocketAddr = config.server.listen;
    let server = tokio::spawn(server::serve(addr, state.clone(), stop_rx.clone()));

    tokio::select! {
        result = wait_for_crds(&client) => result?,
        _ = stopped(stop_rx.clone()) => return finish(server).await,
    }
    state.ready.store(true, Ordering::Relaxed);
    info!("CRDs established");

    let identity = identity();
    let (leading_tx, mut leading_rx) = watch::channel(!config.leader_election.enabled);
    let elector = if config.leader_election.enabled {
        let le = &config.leader_election;
        let settings = LeaderElection {
            namespace: le.namespace.clone().unwrap_or_else(|| config.system_namespace()),
            lease_name: le.lease_name.clone(),
            identity: identity.clone(),
            lease_duration: le.lease_duration,
            retry_period: le.retry_period,
        };
        info!(lease = %settings.lease_name, namespace = %settings.namespace, %identity, "waiting for leadership");
        Some(tokio::spawn(leader::run(client.clone(), settings, leading_tx, stop_rx.clone())))
    } else {
        warn!("leader election disabled: run a single replica");
        None
    };

    tokio::select! {
        _ = leading_rx.wait_for(|leading| *leading) => {}
        _ = stopped(stop_rx.clone()) => {
            if let Some(e) = elector { e.await??; }
            return finish(server).await;
        }
    }
    metrics.leader.set(1);
    info!("leading: starting controllers");

    let ctx = controller::Context::new(client, config.clone(), metrics.clone(), identity, github);
    let shutdown = stopped(stop_rx.clone()).boxed().shared();
    // Controllers drain and return on shutdown; with none registered the manager idles until then.
    let mut controllers = std::pin::pin!(futures::future::join(
        futures::future::join_all(controller::all(ctx, shutdown.clone())),
        shutdown
    ));
    let lost = async {
        let _ = leading_rx.wait_for(|leading| !*leading).await;
    };
    // Like controller-runtime's graceful shutdown timeout: reconciles get this long to
    // finish after SIGTERM (a controller stopped before its first list completes
    // would otherwise wait for a cache that never fills).
    let mut drain_deadline = std::pin::pin!(async {
        stopped(stop_rx.clone()).await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    });
    tokio::select! {
        _ = &mut controllers => {}
        _ = &mut drain_deadline => warn!(timeout = ?DRAIN_TIMEOUT, "controllers did not drain in time; exiting"),
        _ = lost => {
            if *stop_rx.borrow() {
                // SIGTERM: the elector released the Lease on purpose; let reconciles drain.
                tokio::select! {
                    _ = &mut controllers => {}
                    _ = &mut drain_deadline => warn!(timeout = ?DRAIN_TIMEOUT, "controllers did not drain in time; exiting"),
                }
            } else {
                // Another replica may already be writing: stop now, like controller-runtime.
                metrics.leader.set(0);
                let _ = stop_tx.send(true);
                if let Some(e) = elector { e.await??; }
                anyhow::bail!("leadership lost");
            }
        }
    }
    metrics.leader.set(0);
    if let Some(e) = elector {
        e.await??;
    }
    finish(server).await
}

async fn finish(server: tokio::task::JoinHandle<std::io::Result<()>>) -> anyhow::Result<()> {
    server.await??;
    info!("shut down cleanly");
    Ok(())
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn forward_signals(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
    let _ = stop.send(true);
}

/// Waits until every switchyard CRD is installed and Established, so controllers
/// never start watching a resource the apiserver does not serve yet.
async fn wait_for_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let names: Vec<String> = api::all_crds().into_iter().filter_map(|c| c.metadata.name).collect();
    loop {
        let mut missing = Vec::new();
        for name in &names {
            let established = api.get_opt(name).await?.is_some_and(|crd| {
                crd.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if !established {
                missing.push(name.as_str());
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        info!(missing = ?missing, "waiting for CRDs to be Established (install them with `switchyard crd | kubectl apply -f -` or the Helm chart)");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// This replica's leader-election identity: the pod name when running in a pod.
fn identity() -> String {
    let base = std::env::var("POD_NAME").or_else(|_| std::env::var("HOSTNAME")).unwrap_or_else(|_| "switchyard".into());
    format!("{base}-{:08x}", rand::random::<u32>())
}
