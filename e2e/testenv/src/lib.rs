//! A real, local Kubernetes control plane for tests: etcd + kube-apiserver +
//! kube-controller-manager on loopback, in the spirit of controller-runtime's envtest but with
//! the garbage collector and the namespace controller running, so ownerReference cascading
//! deletion and namespace deletion behave like in a real cluster. There is no scheduler and no
//! kubelet: pods never run.
//!
//! ```no_run
//! use switchyard_testenv::ControlPlane;
//! use k8s_openapi::api::core::v1::ConfigMap;
//!
//! #[tokio::test]
//! async fn my_test() -> anyhow::Result<()> {
//!     let cp = ControlPlane::shared().await?;          // or ControlPlane::start() for a private one
//!     let ns = cp.create_unique_namespace("my-test").await?;
//!     let cms: kube::Api<ConfigMap> = kube::Api::namespaced(cp.client(), &ns);
//!     // ... exercise the operator, e.g. spawn it with KUBECONFIG=cp.kubeconfig_path() ...
//!     Ok(())
//! }
//! ```
//!
//! # Binaries
//! Located per binary from `TEST_ASSET_KUBE_APISERVER`, `TEST_ASSET_ETCD`,
//! `TEST_ASSET_KUBE_CONTROLLER_MANAGER` (and `TEST_ASSET_KUBECTL`, `TEST_ASSET_HELM` for the
//! optional helpers), else from the directory `$KUBEBUILDER_ASSETS`, else from
//! `${SWITCHYARD_CACHE:-~/.cache/switchyard}/k8s-<K8S_VERSION>/bin`, which
//! `e2e/build-control-plane.sh` fills.
//!
//! # Cleanup
//! Dropping a [`ControlPlane`] SIGKILLs and reaps its processes and removes its temp dir, also
//! while unwinding from a failed assertion. Children are additionally spawned with
//! `PR_SET_PDEATHSIG=SIGKILL` from a process-lifetime thread, so they die when the test process
//! dies for any reason (see `process.rs`). Planes that are never dropped — notably
//! [`ControlPlane::shared`], which lives in a static — are killed and their directories removed by
//! an `atexit` hook when the test binary exits normally or via `std::process::exit`. If the test
//! process is SIGKILLed, PDEATHSIG still kills the children and the next `start()` removes the
//! orphaned directory. Set `SWITCHYARD_TESTENV_KEEP=1` to keep directories (logs, certs,
//! kubeconfig) for debugging; their path is logged to stderr.
//!
//! # Environment
//! * `SWITCHYARD_TESTENV_START_TIMEOUT` — seconds allowed for the whole startup (default 120).
//! * `SWITCHYARD_TESTENV_KEEP` — keep temp dirs.

mod certs;
mod process;
pub mod redis;
mod wait;

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::process::Proc;
pub use crate::wait::{Condition, wait_for};
pub use certs::ADMIN_USER;

/// The Kubernetes version the binaries are built at (matches k8s-openapi's `v1_34`).
pub const K8S_VERSION: &str = "1.34.4";

/// Controllers run by kube-controller-manager by default: enough for ownerReference garbage
/// collection, namespace deletion and legacy service-account token secrets.
pub const DEFAULT_CONTROLLERS: &[&str] =
    &["garbage-collector-controller", "namespace-controller", "serviceaccount-token-controller"];

/// Field manager used by [`ControlPlane::apply_crds`].
pub const FIELD_MANAGER: &str = "switchyard-testenv";

/// Paths of the control-plane binaries.
#[derive(Clone, Debug)]
pub struct Assets {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    /// May not exist; only needed by [`ControlPlane::kubectl`].
    pub kubectl: PathBuf,
    /// May not exist; only needed by [`ControlPlane::helm`].
    pub helm: PathBuf,
}

impl Assets {
    /// Finds the binaries (see the crate docs) and checks the three required ones exist.
    pub fn locate() -> Result<Self> {
        let dir = std::env::var_os("KUBEBUILDER_ASSETS")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(default_assets_dir);
        Self::resolve(&dir, |env| std::env::var_os(env).filter(|v| !v.is_empty()))
    }

    /// Uses the binaries in `dir` only (no environment overrides); checks the required ones exist.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        Self::resolve(dir, |_| None)
    }

    fn resolve(dir: &Path, env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Self> {
        let pick = |var: &str, name: &str| env(var).map(PathBuf::from).unwrap_or_else(|| dir.join(name));
        let assets = Assets {
            etcd: pick("TEST_ASSET_ETCD", "etcd"),
            kube_apiserver: pick("TEST_ASSET_KUBE_APISERVER", "kube-apiserver"),
            kube_controller_manager: pick("TEST_ASSET_KUBE_CONTROLLER_MANAGER", "kube-controller-manager"),
            kubectl: pick("TEST_ASSET_KUBECTL", "kubectl"),
            helm: pick("TEST_ASSET_HELM", "helm"),
        };
        let missing: Vec<String> = [&assets.etcd, &assets.kube_apiserver, &assets.kube_controller_manager]
            .into_iter()
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            bail!(
                "Kubernetes control-plane binaries not found: {}.\n\
                 Build them (Kubernetes v{K8S_VERSION}) with `e2e/build-control-plane.sh` from the \
                 repository root — it installs into {} — or point KUBEBUILDER_ASSETS (a directory) \
                 or TEST_ASSET_ETCD / TEST_ASSET_KUBE_APISERVER / TEST_ASSET_KUBE_CONTROLLER_MANAGER \
                 at existing binaries.",
                missing.join(", "),
                default_assets_dir().display()
            );
        }
        Ok(assets)
    }
}

/// `${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}/k8s-<K8S_VERSION>/bin`, where
/// `e2e/build-control-plane.sh` puts the binaries.
pub fn default_assets_dir() -> PathBuf {
    let cache =
        std::env::var_os("SWITCHYARD_CACHE").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            home.join(".cache").join("switchyard")
        });
    cache.join(format!("k8s-{K8S_VERSION}")).join("bin")
}

/// Knobs for [`ControlPlane::start_with`].
#[derive(Clone, Debug)]
pub struct Options {
    /// kube-controller-manager `--controllers`; empty means: don't run kube-controller-manager.
    pub controllers: Vec<String>,
    /// Deadline for the whole startup (all three processes).
    pub start_timeout: Duration,
    /// Appended to the kube-apiserver command line (later flags win).
    pub extra_apiserver_args: Vec<String>,
    /// Appended to the kube-controller-manager command line.
    pub extra_controller_manager_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        let secs = std::env::var("SWITCHYARD_TESTENV_START_TIMEOUT").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
        Self {
            controllers: DEFAULT_CONTROLLERS.iter().map(|s| s.to_string()).collect(),
            start_timeout: Duration::from_secs(secs),
            extra_apiserver_args: Vec::new(),
            extra_controller_manager_args: Vec::new(),
        }
    }
}

/// A running etcd + kube-apiserver (+ kube-controller-manager). Stopped on drop.
pub struct ControlPlane {
    id: u64,
    procs: Vec<Proc>,
    dir: PathBuf,
    /// `None` when the directory is kept (`SWITCHYARD_TESTENV_KEEP`).
    tempdir: Option<tempfile::TempDir>,
    config: kube::Config,
    server_url: String,
    kubeconfig_path: PathBuf,
    ca_pem: String,
    assets: Assets,
    startup_time: Duration,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static SHARED: tokio::sync::OnceCell<std::result::Result<ControlPlane, String>> = tokio::sync::OnceCell::const_new();

impl ControlPlane {
    /// Starts a private control plane with [`Options::default`].
    pub async fn start() -> Result<Self> {
        Self::start_with(Options::default()).await
    }

    /// Starts a private control plane. Retries (up to 3 attempts) when a process lost a race for
    /// its loopback port.
    pub async fn start_with(options: Options) -> Result<Self> {
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(|| process::sweep_stale_dirs(&std::env::temp_dir()));
        let assets = Assets::locate()?;
        let mut attempt = 1;
        loop {
            match start_once(&assets, &options).await {
                Ok(cp) => return Ok(cp),
                Err(f) if f.port_conflict && attempt < 3 => {
                    tracing::warn!(attempt, "control plane lost a port race, retrying");
                    attempt += 1;
                }
                Err(f) => return Err(f.error),
            }
        }
    }

    /// One control plane per test process, started on first use and shared by every test in
    /// the binary. **Each test must use its own namespace** (see
    /// [`create_unique_namespace`](Self::create_unique_namespace)) and must not depend on
    /// cluster-scoped state other tests may change (CRDs are fine when applied idempotently
    /// with [`apply_crds`](Self::apply_crds)).
    ///
    /// A static is never dropped, so this instance is cleaned up by an `atexit` hook (kill +
    /// reap + remove the temp dir) and, if the process dies without running it, by the children's
    /// PDEATHSIG. It does not hold a runtime-bound [`kube::Client`]: [`client`](Self::client)
    /// builds a fresh one on the caller's runtime, which is what lets `#[tokio::test]`s (one
    /// runtime each) share it. A startup failure is remembered and returned to every caller.
    pub async fn shared() -> Result<&'static ControlPlane> {
        let r = SHARED.get_or_init(|| async { Self::start().await.map_err(|e| format!("{e:#}")) }).await;
        r.as_ref().map_err(|e| anyhow!("the shared control plane failed to start: {e}"))
    }

    /// A new client authenticated as [`ADMIN_USER`] (group `system:masters`). Must be called
    /// inside a tokio runtime; the client is bound to that runtime.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config.clone()).expect("building a kube client from the testenv config")
    }

    /// The in-memory client configuration (rustls, admin client cert, CA pinned).
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// A self-contained kubeconfig (certificates embedded) for kubectl, helm or a spawned
    /// operator process (`KUBECONFIG=<path>`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// PEM of the CA that signed the serving and client certificates.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The temp dir holding logs (`etcd.log`, `kube-apiserver.log`,
    /// `kube-controller-manager.log`), `pki/` and `kubeconfig`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The binaries in use.
    pub fn assets(&self) -> &Assets {
        &self.assets
    }

    /// How long [`start`](Self::start) took for this instance.
    pub fn startup_time(&self) -> Duration {
        self.startup_time
    }

    /// `kubectl` with `KUBECONFIG` pointing at this control plane (killed when dropped).
    pub fn kubectl(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.assets.kubectl);
        cmd.env("KUBECONFIG", &self.kubeconfig_path).kill_on_drop(true);
        cmd
    }

    /// `kubectl apply --server-side --force-conflicts [extra…] -f -` of `manifests`: the
    /// command's output, whether it succeeded or not (callers assert on it).
    pub async fn apply_manifests(&self, manifests: &[u8], extra: &[&str]) -> std::process::Output {
        use tokio::io::AsyncWriteExt;
        let mut apply = self
            .kubectl()
            .args(["apply", "--server-side", "--force-conflicts"])
            .args(extra)
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let mut stdin = apply.stdin.take().expect("kubectl stdin");
        stdin.write_all(manifests).await.expect("write manifests");
        drop(stdin);
        apply.wait_with_output().await.expect("kubectl finishes")
    }

    /// `helm` with `KUBECONFIG` pointing at this control plane and its cache/config/data dirs
    /// inside the temp dir (killed when dropped).
    pub fn helm(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.assets.helm);
        let home = self.dir.join("helm");
        cmd.env("KUBECONFIG", &self.kubeconfig_path)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .kill_on_drop(true);
        cmd
    }

    /// Creates namespace `name` and returns it.
    pub async fn create_namespace(&self, name: &str) -> Result<Namespace> {
        let ns = Namespace {
            metadata: ObjectMeta { name: Some(name.to_string()), ..Default::default() },
            ..Default::default()
        };
        Api::<Namespace>::all(self.client())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))
    }

    /// Creates a namespace named `<prefix>-<n>-<random>` (truncated to 63 characters) and
    /// returns its name. Use one per test with [`shared`](Self::shared).
    pub async fn create_unique_namespace(&self, prefix: &str) -> Result<String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let suffix = format!("-{n}-{:05x}", (nanos ^ std::process::id()) & 0xfffff);
        let mut prefix: String =
            prefix.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        prefix.truncate(63 - suffix.len());
        let prefix = prefix.trim_matches('-');
        let name = format!("{}{suffix}", if prefix.is_empty() { "test" } else { prefix });
        self.create_namespace(&name).await?;
        Ok(name)
    }

    /// Server-side-applies the CRDs (field manager [`FIELD_MANAGER`], forced) and waits up to
    /// 60 s until each has condition `Established=True`.
    pub async fn apply_crds(&self, crds: &[CustomResourceDefinition]) -> Result<()> {
        let api = Api::<CustomResourceDefinition>::all(self.client());
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let mut names = Vec::with_capacity(crds.len());
        for crd in crds {
            let name = crd.metadata.name.clone().context("CustomResourceDefinition without metadata.name")?;
            let mut crd = crd.clone();
            crd.metadata.managed_fields = None;
            crd.metadata.resource_version = None;
            crd.metadata.uid = None;
            crd.metadata.creation_timestamp = None;
            crd.status = None;
            api.patch(&name, &params, &Patch::Apply(&crd)).await.with_context(|| format!("applying CRD {name}"))?;
            names.push(name);
        }
        for name in names {
            let api = api.clone();
            wait_for(Duration::from_secs(60), format_args!("CRD {name} to be Established"), || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    let crd = api.get(&name).await?;
                    Ok::<_, kube::Error>(crd_established(&crd))
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Stops the control plane now (same as dropping it).
    pub fn stop(self) {}
}

fn crd_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        process::unregister(self.id);
        // Reverse start order: controller-manager, apiserver, etcd.
        for p in self.procs.iter_mut().rev() {
            p.kill();
        }
        if let Some(dir) = self.tempdir.take() {
            let _ = dir.close();
        }
    }
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server_url", &self.server_url)
            .field("dir", &self.dir)
            .field("pids", &self.procs.iter().map(Proc::pid).collect::<Vec<_>>())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Startup

struct StartFailure {
    error: anyhow::Error,
    port_conflict: bool,
}

/// Kills the processes started so far if startup fails.
#[derive(Default)]
struct Procs(Vec<Proc>);

impl Drop for Procs {
    fn drop(&mut self) {
        for p in self.0.iter_mut().rev() {
            p.kill();
        }
    }
}

impl Procs {
    fn logs(&self) -> String {
        let mut out = String::new();
        for p in &self.0 {
            let _ = write!(
                out,
                "\n----- last lines of {} log ({}) -----\n{}\n",
                p.name,
                p.log.display(),
                process::tail(&p.log, 40)
            );
        }
        out
    }

    /// Fails if any process has exited.
    fn check_alive(&mut self) -> Result<()> {
        for p in &mut self.0 {
            if let Some(status) = p.exited() {
                bail!("{} exited during startup: {status}", p.name);
            }
        }
        Ok(())
    }
}

fn keep_dirs() -> bool {
    std::env::var_os("SWITCHYARD_TESTENV_KEEP").is_some_and(|v| !v.is_empty() && v != "0")
}

async fn start_once(assets: &Assets, options: &Options) -> std::result::Result<ControlPlane, StartFailure> {
    let started = Instant::now();
    let tempdir = tempfile::Builder::new()
        .prefix(process::DIR_PREFIX)
        .tempdir()
        .context("creating temp dir")
        .map_err(|error| StartFailure { error, port_conflict: false })?;
    let mut procs = Procs::default();
    match boot(assets, options, tempdir.path(), &mut procs, started).await {
        Ok(parts) => {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let dir = tempdir.path().to_path_buf();
            let keep = keep_dirs();
            let tempdir = if keep {
                eprintln!("switchyard-testenv: keeping {}", tempdir.keep().display());
                None
            } else {
                Some(tempdir)
            };
            let procs = std::mem::take(&mut procs.0);
            process::register(
                id,
                // Killed in this order at exit: controller-manager, apiserver, etcd.
                procs.iter().rev().map(|p| p.pid() as i32).collect(),
                (!keep).then(|| dir.clone()),
            );
            let startup_time = started.elapsed();
            tracing::info!(?startup_time, server = %parts.server_url, "control plane ready");
            Ok(ControlPlane {
                id,
                procs,
                dir,
                tempdir,
                config: parts.config,
                server_url: parts.server_url,
                kubeconfig_path: parts.kubeconfig_path,
                ca_pem: parts.ca_pem,
                assets: assets.clone(),
                startup_time,
            })
        }
        Err(e) => {
            let logs = procs.logs();
            let port_conflict = logs.contains("address already in use");
            drop(procs);
            let kept = if keep_dirs() {
                format!("(kept {})", tempdir.keep().display())
            } else {
                "(the directory has been removed; set SWITCHYARD_TESTENV_KEEP=1 to keep it)".into()
            };
            Err(StartFailure {
                error: anyhow!(
                    "starting the test control plane failed after {:.1?}: {e:#}\n{logs}\n{kept}",
                    started.elapsed()
                ),
                port_conflict,
            })
        }
    }
}

struct Parts {
    config: kube::Config,
    server_url: String,
    kubeconfig_path: PathBuf,
    ca_pem: String,
}

async fn boot(assets: &Assets, options: &Options, dir: &Path, procs: &mut Procs, started: Instant) -> Result<Parts> {
    let deadline = started + options.start_timeout;
    std::fs::write(dir.join(process::OWNER_FILE), std::process::id().to_string())?;
    let pki = certs::generate(&dir.join("pki"))?;

    // Hold all ports until just before spawning, so they are distinct from each other and
    // from other control planes started concurrently in this process.
    let listeners = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("reserving loopback ports")?;
    let ports: Vec<u16> = listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<std::io::Result<_>>()?;
    let [etcd_port, etcd_peer_port, api_port, kcm_port] = ports[..] else { unreachable!() };
    drop(listeners);

    // etcd
    let etcd_url = format!("http://127.0.0.1:{etcd_port}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
    let etcd_args = vec![
        format!("--data-dir={}", dir.join("etcd").display()),
        "--name=testenv".into(),
        format!("--listen-client-urls={etcd_url}"),
        format!("--advertise-client-urls={etcd_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=testenv={peer_url}"),
        "--unsafe-no-fsync=true".into(),
        "--log-level=warn".into(),
    ];
    procs.0.push(Proc::spawn("etcd", &assets.etcd, &etcd_args, dir.join("etcd.log"))?);
    wait_ready(procs, "etcd", deadline, || etcd_healthy(etcd_port)).await?;

    // kube-apiserver
    let server_url = format!("https://127.0.0.1:{api_port}");
    let mut api_args = vec![
        format!("--etcd-servers={etcd_url}"),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        format!("--secure-port={api_port}"),
        format!("--cert-dir={}", dir.join("pki").display()),
        format!("--tls-cert-file={}", pki.serving_cert_file.display()),
        format!("--tls-private-key-file={}", pki.serving_key_file.display()),
        format!("--client-ca-file={}", pki.ca_file.display()),
        "--authorization-mode=RBAC".into(),
        "--disable-admission-plugins=ServiceAccount".into(),
        "--service-cluster-ip-range=10.0.0.0/24".into(),
        "--allow-privileged=true".into(),
        // The lease reconciler would try (and fail, every 10 s) to publish 127.0.0.1 as the
        // `default/kubernetes` endpoint; loopback addresses are invalid there, and nothing
        // in-cluster needs it.
        "--endpoint-reconciler-type=none".into(),
        format!("--service-account-issuer={server_url}"),
        format!("--service-account-key-file={}", pki.sa_pub_file.display()),
        format!("--service-account-signing-key-file={}", pki.sa_key_file.display()),
    ];
    api_args.extend(options.extra_apiserver_args.iter().cloned());
    procs.0.push(Proc::spawn("kube-apiserver", &assets.kube_apiserver, &api_args, dir.join("kube-apiserver.log"))?);

    let kubeconfig = kubeconfig_yaml(&server_url, &pki);
    let kubeconfig_path = dir.join("kubeconfig");
    std::fs::write(&kubeconfig_path, &kubeconfig).context("writing kubeconfig")?;
    let kc = Kubeconfig::from_yaml(&kubeconfig).context("parsing generated kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .context("building kube config")?;
    let client = kube::Client::try_from(config.clone()).context("building kube client")?;
    wait_ready(procs, "kube-apiserver", deadline, || apiserver_ready(client.clone())).await?;

    // kube-controller-manager
    if !options.controllers.is_empty() {
        let mut kcm_args = vec![
            format!("--kubeconfig={}", kubeconfig_path.display()),
            format!("--authentication-kubeconfig={}", kubeconfig_path.display()),
            format!("--authorization-kubeconfig={}", kubeconfig_path.display()),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={kcm_port}"),
            format!("--tls-cert-file={}", pki.serving_cert_file.display()),
            format!("--tls-private-key-file={}", pki.serving_key_file.display()),
            "--leader-elect=false".into(),
            "--use-service-account-credentials=false".into(),
            format!("--controllers={}", options.controllers.join(",")),
            format!("--service-account-private-key-file={}", pki.sa_key_file.display()),
            format!("--root-ca-file={}", pki.ca_file.display()),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
        ];
        kcm_args.extend(options.extra_controller_manager_args.iter().cloned());
        procs.0.push(Proc::spawn(
            "kube-controller-manager",
            &assets.kube_controller_manager,
            &kcm_args,
            dir.join("kube-controller-manager.log"),
        )?);
        let mut kcm_config = config.clone();
        kcm_config.cluster_url = format!("https://127.0.0.1:{kcm_port}").parse()?;
        let kcm_client = kube::Client::try_from(kcm_config)?;
        wait_ready(procs, "kube-controller-manager", deadline, || get_ok(kcm_client.clone(), "/healthz")).await?;
    }

    Ok(Parts { config, server_url, kubeconfig_path, ca_pem: pki.ca_pem })
}

/// Polls `check` until it succeeds, a process exits, or the deadline passes.
async fn wait_ready<F, Fut>(procs: &mut Procs, what: &str, deadline: Instant, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let begun = Instant::now();
    let mut last;
    loop {
        procs.check_alive()?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let per_try = remaining.clamp(Duration::from_millis(1), Duration::from_secs(5));
        match tokio::time::timeout(per_try, check()).await {
            Ok(Ok(())) => {
                tracing::debug!(what, took = ?begun.elapsed(), "ready");
                return Ok(());
            }
            Ok(Err(e)) => last = format!("{e:#}"),
            Err(_) => last = format!("health check did not answer within {per_try:?}"),
        }
        if Instant::now() >= deadline {
            procs.check_alive()?;
            bail!(
                "{what} not ready before the startup deadline (waited {:.1?} for it; raise \
                 SWITCHYARD_TESTENV_START_TIMEOUT on slow machines); last health check: {last}",
                begun.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET http://127.0.0.1:<port>/health` on etcd, over a raw HTTP/1.0 connection.
async fn etcd_healthy(port: u16) -> Result<()> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let resp = String::from_utf8_lossy(&buf);
    let status_ok = resp.lines().next().is_some_and(|l| l.split_whitespace().nth(1) == Some("200"));
    if status_ok && resp.contains(r#""health":"true""#) { Ok(()) } else { bail!("etcd /health: {}", resp.trim()) }
}

/// `/readyz` is ok and the `default` namespace (created asynchronously by the apiserver's
/// system-namespaces controller) exists, so tests can use it right away.
async fn apiserver_ready(client: kube::Client) -> Result<()> {
    get_ok(client.clone(), "/readyz").await?;
    Api::<Namespace>::all(client).get("default").await.context("namespace `default`")?;
    Ok(())
}

async fn get_ok(client: kube::Client, path: &str) -> Result<()> {
    let req = http::Request::get(path).body(Vec::new())?;
    let body = client.request_text(req).await?;
    if body.trim() == "ok" { Ok(()) } else { bail!("{path}: {body}") }
}

fn kubeconfig_yaml(server_url: &str, pki: &certs::Pki) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        r#"apiVersion: v1
kind: Config
clusters:
- name: switchyard-testenv
  cluster:
    server: {server_url}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: switchyard-testenv
  context:
    cluster: switchyard-testenv
    user: {user}
    namespace: default
current-context: switchyard-testenv
preferences: {{}}
"#,
        ca = b64(&pki.ca_pem),
        user = ADMIN_USER,
        cert = b64(&pki.admin_cert_pem),
        key = b64(&pki.admin_key_pem),
    )
}
