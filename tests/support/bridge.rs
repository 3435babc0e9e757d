//! The bridge endpoint simulator with switchyard's own checks
//! (`switchyard_sim::bridge::mounted_verifier`), and a mount directory filled the way
//! the kubelet fills a pod's volumes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use switchyard::logic::bridge_endpoint::{SECRETS_DIR, secret_file};
use switchyard_sim::bridge::{BridgeCall, BridgeConfig, BridgeState, mounted_verifier};
use switchyard_sim::instance::{InstanceSim, InstanceSimConfig, InstanceSimHandle};

/// A platform instance (`switchyard-sim instance`) serving the bridge endpoint
/// next to its health and registration API, as a target app would.
pub struct BridgeInstance {
    instance: InstanceSimHandle,
    bridge: Arc<BridgeState>,
}

impl BridgeInstance {
    /// The instance's base URL.
    pub fn base_url(&self) -> String {
        self.instance.base_url()
    }

    /// Every bridge call so far.
    pub fn calls(&self) -> Vec<BridgeCall> {
        self.bridge.calls()
    }
}

/// Starts an instance on a free port whose bridge endpoint reads `mount_dir`.
pub async fn start(mount_dir: &Path) -> BridgeInstance {
    let bridge = BridgeState::new(BridgeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        mount_dir: mount_dir.to_path_buf(),
        bridge_path: "/api/v1/bridge".into(),
        verifier: mounted_verifier(),
    });
    let routes = bridge.clone();
    let instance =
        InstanceSim::start_with(InstanceSimConfig::default(), move |_| switchyard_sim::bridge::router(routes))
            .await
            .expect("instance simulator with a bridge endpoint");
    BridgeInstance { instance, bridge }
}

/// Replaces the mount's content: `config_map` (key → value) at the top, each grant's
/// Secret data under `secrets/<grant>/`. Each file is renamed into place, so the
/// endpoint never reads half a file; grants no longer given lose their directory.
pub fn write_mount(
    dir: &Path,
    config_map: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
) {
    for (key, value) in config_map {
        write_atomically(&dir.join(key), value.as_bytes());
    }
    let secrets_dir = dir.join(SECRETS_DIR);
    std::fs::create_dir_all(&secrets_dir).expect("secrets dir");
    for entry in std::fs::read_dir(&secrets_dir).expect("read secrets dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !secrets.contains_key(&name) {
            std::fs::remove_dir_all(entry.path()).expect("remove a grant's secrets");
        }
    }
    for (grant, data) in secrets {
        let grant_dir = dir.join(SECRETS_DIR).join(grant);
        std::fs::create_dir_all(&grant_dir).expect("grant dir");
        for entry in std::fs::read_dir(&grant_dir).expect("read grant dir").flatten() {
            if !data.contains_key(&*entry.file_name().to_string_lossy()) {
                std::fs::remove_file(entry.path()).expect("remove a dropped key");
            }
        }
        for (key, value) in data {
            write_atomically(&dir.join(secret_file(grant, key)), value);
        }
    }
}

fn write_atomically(path: &Path, content: &[u8]) {
    // `..`-prefixed names are invisible to readers of a mount, like the kubelet's own.
    let name = path.file_name().expect("file name").to_string_lossy();
    let tmp = path.with_file_name(format!("..tmp-{name}"));
    std::fs::write(&tmp, content).expect("write mount file");
    std::fs::rename(&tmp, path).expect("rename mount file");
}
