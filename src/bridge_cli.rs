//! `switchyard bridge sign|verify`: the signing helpers on the command line, for
//! scripts, curl and debugging. Secrets are read from files, never from argv (argv
//! is visible to every user of the machine in `ps`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use rand::Rng;
use switchyard::logic::bridge_secret::SecretKey;
use switchyard::logic::identifier::Identifier;
use switchyard::logic::signing::{self, Headers, ReplayCache, RequestParts, VerificationKey};

/// Exit code when verification refuses the request.
const EXIT_REFUSED: u8 = 1;
/// Exit code for unusable input (unreadable file, bad argument), as clap uses.
const EXIT_USAGE: u8 = 2;

#[derive(Subcommand)]
pub enum BridgeCommand {
    /// Print the headers that sign a request, one `Name: value` per line.
    Sign(SignArgs),
    /// Verify a signed request: print `ok`, or print the error kind and exit 1.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct SignArgs {
    /// File holding the secret (e.g. the mounted `current` key of the grant's Secret).
    #[arg(long)]
    secret_file: PathBuf,
    /// The calling instance, `code` or `code@tag`.
    #[arg(long)]
    caller: String,
    /// HTTP method.
    #[arg(long, default_value = "POST")]
    method: String,
    /// Request path and query, e.g. `/api/v1/bridge/orders.sync`.
    #[arg(long)]
    path: String,
    /// File holding the request body; empty body when omitted.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// Unix seconds to sign at; now when omitted.
    #[arg(long)]
    timestamp: Option<i64>,
    /// Request id; 16 random bytes in hex when omitted.
    #[arg(long)]
    request_id: Option<String>,
    /// Version of the secret, sent as `X-Bridge-Key-Version`.
    #[arg(long)]
    key_version: Option<i64>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// File holding the current secret.
    #[arg(long)]
    secret_file: PathBuf,
    /// File holding the previous secret, still accepted during a rotation's overlap.
    #[arg(long)]
    previous_secret_file: Option<PathBuf>,
    /// HTTP method.
    #[arg(long, default_value = "POST")]
    method: String,
    /// Request path and query, as sent.
    #[arg(long)]
    path: String,
    /// File holding the request body; empty body when omitted.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// A received header, `Name: value`; repeat for each.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Unix seconds to verify at; now when omitted.
    #[arg(long)]
    now: Option<i64>,
}

/// Runs a `bridge` subcommand.
pub fn run(command: BridgeCommand) -> ExitCode {
    let result = match command {
        BridgeCommand::Sign(args) => sign(args),
        BridgeCommand::Verify(args) => verify(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn read_secret(path: &Path) -> Result<SecretKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
    SecretKey::from_text(&text).map_err(|e| format!("secret file {}: {e}", path.display()))
}

fn read_body(path: Option<&Path>) -> Result<Vec<u8>, String> {
    path.map_or(Ok(Vec::new()), |p| std::fs::read(p).map_err(|e| format!("cannot read body file {}: {e}", p.display())))
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn sign(args: SignArgs) -> Result<ExitCode, String> {
    let key = read_secret(&args.secret_file)?;
    let caller = Identifier::parse(&args.caller).map_err(|e| format!("--caller: {e}"))?;
    let body = read_body(args.body_file.as_deref())?;
    let request_id = args.request_id.unwrap_or_else(|| {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    });
    let request = RequestParts { method: &args.method, path: &args.path, body: &body };
    let timestamp = args.timestamp.unwrap_or_else(unix_now);
    let headers =
        signing::sign(&key, args.key_version, &caller, request, timestamp, &request_id).map_err(|e| e.to_string())?;
    for (name, value) in headers.to_pairs() {
        println!("{name}: {value}");
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> Result<ExitCode, String> {
    let current = read_secret(&args.secret_file)?;
    let previous = args.previous_secret_file.as_deref().map(read_secret).transpose()?;
    let body = read_body(args.body_file.as_deref())?;
    let pairs = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(n, v)| (n.trim(), v.trim()))
                .ok_or(format!("--header {h:?}: expected `Name: value`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let headers = Headers::from_pairs(pairs);
    let keys: Vec<VerificationKey<'_>> = [Some(&current), previous.as_ref()]
        .into_iter()
        .flatten()
        .map(|key| VerificationKey { version: None, key })
        .collect();
    let request = RequestParts { method: &args.method, path: &args.path, body: &body };
    let now = args.now.unwrap_or_else(unix_now);
    match signing::verify_request(request, &headers, &keys, &mut ReplayCache::new(1), now) {
        Ok(_) => {
            println!("ok");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{}", e.kind());
            eprintln!("error: {e}");
            Ok(ExitCode::from(EXIT_REFUSED))
        }
    }
}
