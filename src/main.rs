//! The `switchyard` binary: run the operator, print CRDs, and offline helpers.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bridge_cli;
mod graph_command;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Kubernetes operator for preview environments and shared platform resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers (with leader election, metrics and health endpoints).
    Run {
        /// Path of the YAML config file.
        #[arg(long, env = "SWITCHYARD_CONFIG")]
        config: PathBuf,
    },
    /// Print every CustomResourceDefinition as YAML.
    Crd,
    /// Analyse a RepoDependencyGraph manifest offline: order, phases, cycles.
    ///
    /// Discovery `path`s are read relative to the manifest; `configMapRef`s from
    /// ConfigMaps in the same YAML stream. Exit codes: 1 unreadable or invalid
    /// manifest, 2 a cycle with --fail-on-cycle, 3 deeper than maxDepth.
    Graph {
        /// The manifest (YAML, may hold several documents).
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: graph_command::Format,
        /// Exit with status 2 when the graph has a cycle.
        #[arg(long)]
        fail_on_cycle: bool,
    },
    /// Sign or verify BridgeGrant requests offline; secrets are read from files.
    Bridge {
        #[command(subcommand)]
        command: bridge_cli::BridgeCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match switchyard::api::crds_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot render CRDs: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Graph { file, format, fail_on_cycle } => graph_command::run(&file, format, fail_on_cycle),
        Command::Run { config } => switchyard::runtime::main(config),
        Command::Bridge { command } => bridge_cli::run(command),
    }
}
