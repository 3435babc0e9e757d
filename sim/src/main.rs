//! `switchyard-sim`: simulators for the systems switchyard talks to.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use switchyard_sim::bridge::{self, BridgeConfig, BridgeState};
use switchyard_sim::forge::{ForgeSim, ForgeSimConfig, TokenSpec};
use switchyard_sim::github::{GithubSim, GithubSimConfig};
use switchyard_sim::instance::{InstanceSim, InstanceSimConfig, Seed, TestPki, TlsMaterial};

#[derive(Parser)]
#[command(
    name = "switchyard-sim",
    version,
    about = "Simulators for Laravel Forge, GitHub and remote platform instances"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Laravel Forge's organization-scoped API under /api, with /_sim control endpoints.
    Forge(ForgeArgs),
    /// GitHub's REST API (pull requests, permissions, issue comments, contents), with /_sim control endpoints.
    Github(GithubArgs),
    /// A remote platform instance on the cross-branch design (register-branch, health, sync-organization,
    /// validate-license, share-resource, user-authentication), optionally the bridge
    /// endpoint, with /_sim control endpoints.
    Instance(InstanceArgs),
}

#[derive(clap::Args)]
struct InstanceArgs {
    /// Address to listen on (port 0 picks a free port; the chosen URL is printed).
    #[arg(long, default_value = "127.0.0.1:8910", env = "INSTANCE_SIM_LISTEN")]
    listen: SocketAddr,
    /// A branch in the registry from the start, `NAME,URL,TYPE,KEY` (TYPE `top_branch` or
    /// `master_branch`); repeatable.
    #[arg(long = "register", value_name = "NAME,URL,TYPE,KEY", env = "INSTANCE_SIM_REGISTER", value_delimiter = ';')]
    registered: Vec<Seed>,
    /// A license `validate-license` calls valid; repeatable.
    #[arg(long = "license", env = "INSTANCE_SIM_LICENSES", value_delimiter = ';')]
    licenses: Vec<String>,
    /// Status of a registration under a taken name: 409, or 422 as Laravel's `unique` rule answers.
    #[arg(long, default_value_t = 409, value_parser = clap::value_parser!(u16).range(409..=422))]
    duplicate_status: u16,
    /// Name the health endpoint reports.
    #[arg(long, default_value = "instance")]
    name: String,
    /// Version the health endpoint reports.
    #[arg(long, default_value = "1.0.0")]
    version: String,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key", conflicts_with = "self_signed_ca")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a fresh CA-signed certificate for 127.0.0.1 and localhost; the CA is written here.
    #[arg(long)]
    self_signed_ca: Option<PathBuf>,
    /// Serve the bridge endpoint, enforcing the allowlist and grant Secrets mounted here
    /// (`allowlist.json`, `secrets/<grant>/<key>`), re-read on every call.
    #[arg(long)]
    bridge_mount_dir: Option<PathBuf>,
    /// Path prefix of the bridge endpoint: a call to `<PATH>/<command>` runs `<command>`.
    #[arg(long, value_name = "PATH", default_value = "/api/v1/bridge", requires = "bridge_mount_dir")]
    bridge_path: String,
}

#[derive(clap::Args)]
struct ForgeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen URL is printed).
    #[arg(long, default_value = "127.0.0.1:8900", env = "FORGE_SIM_LISTEN")]
    listen: SocketAddr,
    /// Accepted bearer token, `TOKEN` or `TOKEN=scope,scope`; repeatable. None = accept any token.
    #[arg(long = "token", env = "FORGE_SIM_TOKENS", value_delimiter = ';')]
    tokens: Vec<TokenSpec>,
    /// Organization slug.
    #[arg(long, default_value = "demo")]
    org: String,
    /// Persist state here (loaded on start, rewritten on every change).
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// Duration of each async step (installing → installed, queued → deploying → finished).
    #[arg(long, default_value_t = 300)]
    async_delay_ms: u64,
    /// Take Forge's own step durations (site install ~60 s, repository ~20 s, certificate
    /// ~45 s, deployment ~90 s) multiplied by this factor, instead of --async-delay-ms.
    #[arg(long)]
    realistic_timing: Option<f64>,
    /// Requests per window per token.
    #[arg(long, default_value_t = 60)]
    rate_limit: u32,
    /// Rate-limit window (Forge: one minute).
    #[arg(long, default_value_t = 60_000)]
    rate_window_ms: u64,
    /// Create schemas and users for real, e.g. mysql://root:pw@127.0.0.1:3306
    #[arg(long, env = "FORGE_SIM_MYSQL_URL")]
    mysql_url: Option<String>,
}

#[derive(clap::Args)]
struct GithubArgs {
    /// Address to listen on (port 0 picks a free port; the chosen URL is printed).
    #[arg(long, default_value = "127.0.0.1:8901", env = "GITHUB_SIM_LISTEN")]
    listen: SocketAddr,
    /// Accepted bearer token, `TOKEN` or `TOKEN=login`; repeatable. None = accept any token.
    #[arg(long = "token", env = "GITHUB_SIM_TOKENS", value_delimiter = ';')]
    tokens: Vec<switchyard_sim::github::Token>,
    /// Persist state here (loaded on start, rewritten on every change).
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// Requests per window per token.
    #[arg(long, default_value_t = 5000)]
    rate_limit: u32,
    /// Rate-limit window (GitHub: one hour).
    #[arg(long, default_value_t = 3_600_000)]
    rate_window_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Forge(args) => {
            let config = ForgeSimConfig {
                listen: args.listen,
                tokens: args.tokens,
                org: args.org,
                state_file: args.state_file,
                async_delay: Duration::from_millis(args.async_delay_ms),
                timing: args.realistic_timing.map(switchyard_sim::forge::lifecycle::Timing::realistic),
                rate_limit: args.rate_limit,
                rate_window: Duration::from_millis(args.rate_window_ms),
                mysql_url: args.mysql_url,
            };
            serve("forge", ForgeSim::start(config).await.map(|h| (h.base_url(), h.wait()))).await
        }
        Command::Github(args) => {
            let config = GithubSimConfig {
                listen: args.listen,
                tokens: args.tokens,
                rate_limit: args.rate_limit,
                rate_window: Duration::from_millis(args.rate_window_ms),
                state_file: args.state_file,
            };
            serve("github", GithubSim::start(config).await.map(|h| (h.base_url(), h.wait()))).await
        }
        Command::Instance(args) => instance(args).await,
    }
}

async fn instance(args: InstanceArgs) -> ExitCode {
    let tls = match (args.tls_cert, args.tls_key, args.self_signed_ca) {
        (Some(cert), Some(key), _) => Some(TlsMaterial::Files { cert, key }),
        (_, _, Some(ca_path)) => {
            let pki = match TestPki::generate(&["127.0.0.1", "localhost"]) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("switchyard-sim instance: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Err(e) = std::fs::write(&ca_path, &pki.ca_pem) {
                eprintln!("switchyard-sim instance: writing {}: {e}", ca_path.display());
                return ExitCode::FAILURE;
            }
            Some(pki.material())
        }
        _ => None,
    };
    let bridge_state = match args.bridge_mount_dir {
        Some(mount_dir) => {
            let path = &args.bridge_path;
            let control = path.trim_end_matches('/') == "/_sim" || path.starts_with("/_sim/");
            if !path.starts_with('/') || path.contains(['{', '}', '*']) || control {
                eprintln!(
                    "switchyard-sim instance: --bridge-path {path:?} must start with '/', contain no '{{', '}}' \
                     or '*', and be outside /_sim"
                );
                return ExitCode::FAILURE;
            }
            if !mount_dir.is_dir() {
                tracing::warn!(dir = %mount_dir.display(), "bridge mount directory does not exist (yet); calls get 503");
            }
            Some(BridgeState::new(BridgeConfig {
                listen: args.listen,
                mount_dir,
                bridge_path: args.bridge_path,
                verifier: bridge::mounted_verifier(),
            }))
        }
        None => None,
    };
    let config = InstanceSimConfig {
        listen: args.listen,
        name: args.name,
        version: args.version,
        registered: args.registered,
        licenses: args.licenses,
        duplicate_status: args.duplicate_status,
        tls,
    };
    let bridge_routes = move |_: &_| bridge_state.map(bridge::router).unwrap_or_default();
    serve("instance", InstanceSim::start_with(config, bridge_routes).await.map(|h| (h.base_url(), h.wait()))).await
}

/// Prints where a started simulator listens and serves until it stops or Ctrl-C.
async fn serve<E: std::fmt::Display>(
    name: &str,
    started: Result<(String, impl std::future::Future<Output = ()>), E>,
) -> ExitCode {
    match started {
        Ok((url, serving)) => {
            println!("{name} simulator listening on {url}");
            tokio::select! {
                _ = serving => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchyard-sim {name}: {e}");
            ExitCode::FAILURE
        }
    }
}
