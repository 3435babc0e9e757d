//! Runs the `switchyard-sim` binary as a user would and reads the URL it prints.

use std::io::BufRead;
use std::process::{Command, Stdio};

/// A simulator process, killed and reaped on drop (also when a test panics).
pub struct Cli(std::process::Child);

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `switchyard-sim <args>` and returns it with the URL from its first line
/// of output (`... listening on <url>`).
pub async fn start(args: &[&str]) -> (Cli, String) {
    let mut child = Cli(Command::new(env!("CARGO_BIN_EXE_switchyard-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("switchyard-sim starts"));
    let stdout = child.0.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .expect("join")
    .expect("first line");
    let url = line.trim().rsplit(' ').next().unwrap_or_default().to_string();
    (child, url)
}
