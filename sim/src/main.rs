//! `switchyard-sim`: simulators for the systems switchyard talks to.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use switchyard_sim::forge::{ForgeSim, ForgeSimConfig, TokenSpec};
use switchyard_sim::github::{GithubSim, GithubSimConfig};

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
    /// Remote platform instance simulator (not implemented yet).
    Instance,
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
                rate_limit: args.rate_limit,
                rate_window: Duration::from_millis(args.rate_window_ms),
                mysql_url: args.mysql_url,
            };
            match ForgeSim::start(config).await {
                Ok(handle) => {
                    println!("forge simulator listening on {}", handle.base_url());
                    tokio::select! {
                        _ = handle.wait() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("switchyard-sim forge: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Github(args) => {
            let config = GithubSimConfig {
                listen: args.listen,
                tokens: args.tokens,
                rate_limit: args.rate_limit,
                rate_window: Duration::from_millis(args.rate_window_ms),
                state_file: args.state_file,
            };
            match GithubSim::start(config).await {
                Ok(handle) => {
                    println!("github simulator listening on {}", handle.base_url());
                    tokio::select! {
                        _ = handle.wait() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("switchyard-sim github: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Instance => {
            eprintln!("not implemented yet");
            ExitCode::from(2)
        }
    }
}
