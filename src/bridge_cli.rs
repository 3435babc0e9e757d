//! `switchyard bridge sign|verify|call`: the signing helpers on the command line, for
//! scripts, curl and debugging. Secrets are read from files, never from argv (argv
//! is visible to every user of the machine in `ps`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use rand::Rng;
use switchyard::logic::allowlist;
use switchyard::logic::bridge_secret::SecretKey;
use switchyard::logic::identifier::Identifier;
use switchyard::logic::signing::{self, Headers, ReplayCache, RequestParts, SignedHeaders, VerificationKey};

/// Exit code when verification refuses the request, or the endpoint answers `call` with a non-2xx status.
const EXIT_REFUSED: u8 = 1;
/// Exit code for unusable input (unreadable file, bad argument), as clap uses.
const EXIT_USAGE: u8 = 2;
/// Exit code when `call` gets no answer (connection refused, TLS failure, timeout).
const EXIT_UNREACHABLE: u8 = 3;

#[derive(Subcommand)]
pub enum BridgeCommand {
    /// Print the headers that sign a request, one `Name: value` per line.
    Sign(Box<SignArgs>),
    /// Verify a signed request: print `ok`, or print the error kind and exit 1.
    Verify(VerifyArgs),
    /// Sign a request to a target's bridge command, send it and print the response body.
    ///
    /// Exit codes: 0 the endpoint answered 2xx; 1 it answered with another status
    /// (the body, e.g. `{"error":"Revoked",...}`, is still printed and the status goes
    /// to stderr); 2 unusable input; 3 no answer (connection refused, TLS failure, timeout).
    Call(Box<CallArgs>),
}

/// How to sign: shared by `sign` and `call`.
#[derive(Args)]
pub struct SignerArgs {
    /// File holding the secret (e.g. the mounted `current` key of the grant's Secret).
    #[arg(long)]
    secret_file: PathBuf,
    /// The calling instance, `code` or `code@tag`.
    #[arg(long)]
    caller: String,
    /// HTTP method.
    #[arg(long, default_value = "POST")]
    method: String,
    /// File holding the request body; empty body when neither this nor --body is given.
    #[arg(long, conflicts_with = "body")]
    body_file: Option<PathBuf>,
    /// The request body as text.
    #[arg(long)]
    body: Option<String>,
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
pub struct SignArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// Request path and query, e.g. `/api/v1/bridge/orders.sync`.
    #[arg(long)]
    path: String,
}

#[derive(Args)]
pub struct CallArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// Base URL of the target instance, e.g. `https://billing.example.com`.
    #[arg(long)]
    url: String,
    /// The bridge command to run, e.g. `invoices.create`.
    #[arg(long)]
    command: String,
    /// Path of the target's bridge endpoint (the allowlist's `bridgePath`).
    #[arg(long, default_value = "/api/v1/bridge")]
    bridge_path: String,
    /// `Content-Type` of the body.
    #[arg(long, default_value = "application/json")]
    content_type: String,
    /// PEM file of CA certificates to trust for an https URL, besides the system's.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
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
        BridgeCommand::Sign(args) => sign(*args),
        BridgeCommand::Verify(args) => verify(args),
        BridgeCommand::Call(args) => call(*args),
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

fn random_request_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Reads the secret and body and signs `method path` as the caller.
fn sign_request(args: &SignerArgs, path: &str) -> Result<(SignedHeaders, Vec<u8>), String> {
    let key = read_secret(&args.secret_file)?;
    let caller = Identifier::parse(&args.caller).map_err(|e| format!("--caller: {e}"))?;
    let body = match &args.body {
        Some(text) => text.clone().into_bytes(),
        None => read_body(args.body_file.as_deref())?,
    };
    let request_id = args.request_id.clone().unwrap_or_else(random_request_id);
    let request = RequestParts { method: &args.method, path, body: &body };
    let timestamp = args.timestamp.unwrap_or_else(unix_now);
    let headers =
        signing::sign(&key, args.key_version, &caller, request, timestamp, &request_id).map_err(|e| e.to_string())?;
    Ok((headers, body))
}

fn sign(args: SignArgs) -> Result<ExitCode, String> {
    let (headers, _) = sign_request(&args.signer, &args.path)?;
    for (name, value) in headers.to_pairs() {
        println!("{name}: {value}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The URL of `command` on the target and the path (with query) that gets signed.
fn command_url(base: &str, bridge_path: &str, command: &str) -> Result<(reqwest::Url, String), String> {
    if !allowlist::is_valid_command(command) {
        return Err(format!("--command {command:?} is not a command name"));
    }
    let mut url = reqwest::Url::parse(base).map_err(|e| format!("--url {base:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("--url {base:?}: expected an http or https URL"));
    }
    let path = format!("{}/{}/{command}", url.path().trim_end_matches('/'), bridge_path.trim_matches('/'));
    url.set_path(&path);
    let signed = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    Ok((url, signed))
}

fn call(args: CallArgs) -> Result<ExitCode, String> {
    let (url, path) = command_url(&args.url, &args.bridge_path, &args.command)?;
    let (headers, body) = sign_request(&args.signer, &path)?;
    let method = reqwest::Method::from_bytes(args.signer.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("--method {:?} is not an HTTP method", args.signer.method))?;
    let mut client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(args.timeout_secs));
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        for cert in
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("CA file {}: {e}", path.display()))?
        {
            client = client.add_root_certificate(cert);
        }
    }
    let client = client.build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut request = client.request(method, url).header(reqwest::header::CONTENT_TYPE, &args.content_type);
    for (name, value) in headers.to_pairs() {
        request = request.header(name, value);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let answer = runtime.block_on(async {
        let response = request.body(body).send().await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.bytes().await?))
    });
    match answer {
        Ok((status, body)) => {
            use std::io::Write;
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(&body).and_then(|()| stdout.flush());
            if status.is_success() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("error: the endpoint answered {status}");
                Ok(ExitCode::from(EXIT_REFUSED))
            }
        }
        Err(e) => {
            eprintln!("error: no answer from the endpoint: {e}");
            Ok(ExitCode::from(EXIT_UNREACHABLE))
        }
    }
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
