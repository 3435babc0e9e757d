//! The `switchyard` binary: run the operator, print CRDs, and offline helpers.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bridge_cli;

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
        Command::Run { config: _ } => todo!(),
        Command::Bridge { command } => bridge_cli::run(command),
    }
}
