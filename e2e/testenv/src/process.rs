//! Child-process plumbing: spawning so that children die with the test process, a registry of
//! live control planes cleaned up at process exit, and a sweep of directories left behind by
//! test processes that were killed outright.
//!
//! # Why a spawner thread
//! On Linux, `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not when
//! the process does. Test threads (and tokio worker threads) come and go, so a child forked
//! from a test thread would be SIGKILLed as soon as that test finished — fatal for
//! [`ControlPlane::shared`](crate::ControlPlane::shared). All children are therefore forked by
//! one dedicated thread that lives as long as the process, so the death signal means exactly
//! "the test process is gone" (including SIGKILL of the test process, where no destructor or
//! `atexit` handler runs).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result};

/// Prefix of every temp dir this crate creates (used by the stale-dir sweep).
pub(crate) const DIR_PREFIX: &str = "switchyard-testenv-";
/// File in each temp dir holding the owning test process id.
pub(crate) const OWNER_FILE: &str = "owner.pid";

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnJob>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("switchyard-testenv-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so this loop (and thread) never ends.
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the switchyard-testenv spawner thread");
        Mutex::new(tx)
    })
}

/// A running child process whose stdout and stderr go to `log`.
pub(crate) struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `program args...` with stdout+stderr appended to `log`, arranged to receive
    /// SIGKILL when the test process dies.
    pub fn spawn(name: &'static str, program: &Path, args: &[String], log: PathBuf) -> Result<Self> {
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::from(out)).stderr(Stdio::from(err));
        die_with_parent(&mut cmd);
        let (tx, rx) = mpsc::channel();
        spawner()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((cmd, tx))
            .map_err(|_| anyhow::anyhow!("spawner thread is gone"))?;
        let child = rx
            .recv()
            .context("spawner thread is gone")?
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        Ok(Self { name, child, log })
    }

    /// `Some(description)` if the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown state ({e})")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: `getpid` is async-signal-safe.
    let parent = unsafe { libc::getpid() };
    // SAFETY: only async-signal-safe calls (prctl, getppid) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then nobody will signal us.
            if libc::getppid() != parent {
                return Err(io::Error::other("parent died before exec"));
            }
            Ok(())
        });
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
fn die_with_parent(cmd: &mut Command) {
    // No PDEATHSIG: give the children their own process group so that a terminal's Ctrl-C
    // does not half-stop them, and rely on Drop / the atexit hook for cleanup.
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

/// The last `lines` lines of a log file (at most 16 KiB read from its end).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let read = || -> io::Result<String> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        let start = len.saturating_sub(16 * 1024);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf);
        let all: Vec<&str> = text.lines().collect();
        Ok(all[all.len().saturating_sub(lines)..].join("\n"))
    };
    read().unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Exit-time cleanup of control planes that are never dropped (the shared one lives in a static).

struct Live {
    pids: Vec<i32>,
    dir: Option<PathBuf>,
}

static REGISTRY: OnceLock<Mutex<HashMap<u64, Live>>> = OnceLock::new();

fn registry() -> &'static Mutex<HashMap<u64, Live>> {
    REGISTRY.get_or_init(|| {
        // SAFETY: registering a plain `extern "C" fn` with atexit.
        unsafe { libc::atexit(cleanup_at_exit) };
        Mutex::new(HashMap::new())
    })
}

/// Registers a control plane's processes and directory for killing/removal at process exit.
/// `dir` is `None` when the directory must be kept.
pub(crate) fn register(id: u64, pids: Vec<i32>, dir: Option<PathBuf>) {
    registry().lock().unwrap_or_else(|p| p.into_inner()).insert(id, Live { pids, dir });
}

pub(crate) fn unregister(id: u64) {
    registry().lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
}

extern "C" fn cleanup_at_exit() {
    // Never initialise the registry during exit: `get`, not `registry()`.
    let Some(reg) = REGISTRY.get() else {
        return;
    };
    let Ok(mut reg) = reg.try_lock() else {
        return;
    };
    for (_, live) in reg.drain() {
        for pid in &live.pids {
            // SAFETY: plain syscalls on pids we spawned and have not reaped (a Proc that was
            // reaped unregisters first).
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
                libc::waitpid(*pid, std::ptr::null_mut(), 0);
            }
        }
        if let Some(dir) = live.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Removes `switchyard-testenv-*` directories under `parent` whose owning process is gone
/// (left behind when a test process was SIGKILLed; its children died by PDEATHSIG).
pub(crate) fn sweep_stale_dirs(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let Ok(pid) = std::fs::read_to_string(dir.join(OWNER_FILE)) else {
            continue;
        };
        let Ok(pid) = pid.trim().parse::<i32>() else {
            continue;
        };
        if !process_alive(pid) {
            tracing::debug!(dir = %dir.display(), pid, "removing stale testenv dir");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence/permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}
