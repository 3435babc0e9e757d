//! A world for PreviewEnvironment tests and benchmarks: the real control plane, a
//! real redis-server and MariaDB, the Forge simulator writing into that MariaDB,
//! a snapshot database to clone, and `switchyard run` processes configured for it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use mysql_async::prelude::Queryable;
use serde_json::json;
use switchyard::api::conditions;
use switchyard::api::{PreviewClass, PreviewEnvironment, PreviewEnvironmentStatus};
use switchyard_sim::forge::{ForgeSim, ForgeSimConfig, ForgeSimHandle, TokenSpec};
use switchyard_sim::testsupport::mariadb::MariaDb;
use switchyard_testenv::redis::RedisProcess;
use switchyard_testenv::{ControlPlane, wait_for};

use crate::support::Operator;

pub const TOKEN: &str = "preview-test-token";
pub const SNAPSHOT: &str = "snapshot_shop";
pub const TIMEOUT: Duration = Duration::from_secs(180);

pub struct World {
    pub cp: &'static ControlPlane,
    pub ns: String,
    pub redis: RedisProcess,
    pub mariadb: MariaDb,
    pub forge: ForgeSimHandle,
    /// Operator tweaks: Forge requests per minute, drift interval.
    pub rate_per_minute: u32,
    pub requeue: String,
    /// How long the operator waits for one Forge request.
    pub request_timeout: String,
}

impl World {
    pub async fn new(prefix: &str) -> Self {
        Self::with(prefix, |_| {}).await
    }

    pub async fn with(prefix: &str, tweak: impl FnOnce(&mut ForgeSimConfig)) -> Self {
        let cp = ControlPlane::shared().await.expect("control plane");
        cp.apply_crds(&switchyard::api::all_crds()).await.expect("CRDs");
        let ns = cp.create_unique_namespace(prefix).await.expect("namespace");
        // Enough databases for the 25-environment benchmark (0 is never handed out).
        let redis = RedisProcess::start(32).await.expect("redis-server");
        let mariadb = tokio::task::spawn_blocking(MariaDb::start).await.expect("join").expect("mariadbd starts");
        let mut config = ForgeSimConfig {
            tokens: vec![TokenSpec::all_scopes(TOKEN)],
            async_delay: Duration::from_millis(200),
            rate_limit: 100_000,
            rate_window: Duration::from_secs(60),
            mysql_url: Some(mariadb.url()),
            ..Default::default()
        };
        tweak(&mut config);
        let forge = ForgeSim::start(config).await.expect("forge simulator");
        let world = Self {
            cp,
            ns,
            redis,
            mariadb,
            forge,
            rate_per_minute: 100_000,
            requeue: "10m".into(),
            request_timeout: "30s".into(),
        };
        world.secret("forge", "token", TOKEN).await;
        world.secret("redis", "url", &world.redis.url()).await;
        world.secret("mysql-admin", "url", &world.mariadb.url()).await;
        world.apply_class(&world.ns, world.class_spec(1)).await;
        world.secret("app-secrets", "mail-password", "m@il pass").await;
        world.seed_snapshot().await;
        world
    }

    pub async fn secret(&self, name: &str, key: &str, value: &str) {
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": {key: value}})).expect("secret");
        Api::<Secret>::namespaced(self.cp.client(), &self.ns)
            .create(&PostParams::default(), &secret)
            .await
            .expect("secret");
    }

    /// The spec of a PreviewClass for this world's namespace on Forge server `server`,
    /// its Secrets in the world's namespace (standing in for an admin namespace).
    pub fn class_spec(&self, server: i64) -> serde_json::Value {
        let ns = &self.ns;
        json!({
            "forge": {"baseUrl": self.forge.base_url(), "organization": "demo", "serverId": server,
                      "tokenSecretRef": {"namespace": ns, "name": "forge", "key": "token"}},
            "namespaces": [ns],
            "site": {"isolation": "Optional"},
            "deploy": {"allowCustomScript": true},
            "database": {"adminCredentialsSecretRef": {"namespace": ns, "name": "mysql-admin", "key": "url"},
                         "snapshots": [SNAPSHOT]},
            "redis": {"pool": "redis"}
        })
    }

    /// Creates or replaces PreviewClass `name` (cluster-scoped, so named after the
    /// world's namespace to keep parallel tests apart).
    pub async fn apply_class(&self, name: &str, spec: serde_json::Value) {
        let class: PreviewClass = serde_json::from_value(json!({
            "apiVersion": "switchyard.dev/v1alpha1", "kind": "PreviewClass",
            "metadata": {"name": name}, "spec": spec,
        }))
        .expect("class");
        Api::<PreviewClass>::all(self.cp.client())
            .patch(name, &PatchParams::apply("switchyard-tests").force(), &Patch::Apply(&class))
            .await
            .expect("apply class");
    }

    pub async fn mysql(&self) -> mysql_async::Conn {
        mysql_async::Conn::from_url(self.mariadb.url()).await.expect("mysql connection")
    }

    /// A snapshot with rows, a generated column, a foreign key, a view and a trigger.
    async fn seed_snapshot(&self) {
        let mut conn = self.mysql().await;
        conn.query_drop(format!(
            "CREATE DATABASE {SNAPSHOT}; USE {SNAPSHOT};
             CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50), upper_name VARCHAR(50) AS (UPPER(name)) VIRTUAL);
             CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, customer_id INT, total DECIMAL(10,2),
                                  FOREIGN KEY (customer_id) REFERENCES customers(id));
             CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100));
             INSERT INTO customers (id, name) VALUES (1,'ada'),(2,'grace'),(3,'linus');
             INSERT INTO orders (customer_id, total) VALUES (1, 10.50),(1, 3.25),(2, 99.99),(3, 1.00);
             CREATE VIEW big_orders AS SELECT id, total FROM {SNAPSHOT}.orders WHERE total > 5;
             CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (note) VALUES ('order');"
        ))
        .await
        .expect("seed snapshot");
        conn.disconnect().await.ok();
    }

    /// A row-level fingerprint of every base table of `db`.
    pub async fn table_checksums(&self, db: &str) -> BTreeMap<String, String> {
        let mut conn = self.mysql().await;
        let tables: Vec<String> = conn
            .exec(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'",
                (db,),
            )
            .await
            .expect("tables");
        let mut out = BTreeMap::new();
        for t in tables {
            let rows: Vec<String> = conn
                .query(format!(
                    "SELECT CAST(COUNT(*) AS CHAR) FROM `{db}`.`{t}` UNION ALL SELECT IFNULL(CAST(SUM(CRC32(CONCAT_WS('|', id))) AS CHAR), '0') FROM `{db}`.`{t}`"
                ))
                .await
                .expect("checksum");
            out.insert(t, rows.join("/"));
        }
        conn.disconnect().await.ok();
        out
    }

    pub fn operator(&self) -> Operator {
        self.operator_with(String::new())
    }

    /// The operator with `extra` YAML (top-level sections) appended to its config.
    pub fn operator_with(&self, extra: String) -> Operator {
        self.operator_as(self.cp.kubeconfig_path(), extra)
    }

    /// The operator with the credentials of `kubeconfig` and `extra` config.
    pub fn operator_as(&self, kubeconfig: &std::path::Path, extra: String) -> Operator {
        let (ns, forge, rate, requeue, timeout) = (
            self.ns.clone(),
            self.forge.base_url(),
            self.rate_per_minute,
            self.requeue.clone(),
            self.request_timeout.clone(),
        );
        Operator::start_with_kubeconfig(kubeconfig, move |port| {
            format!(
                r#"server: {{listen: "127.0.0.1:{port}"}}
leaderElection: {{enabled: false}}
controller: {{namespace: {ns}, systemNamespace: {ns}, concurrency: 4, requeueInterval: {requeue}}}
forge:
  baseUrl: {forge}
  organization: demo
  tokenSecretRef: {{namespace: {ns}, name: forge, key: token}}
  rateLimitPerMinute: {rate}
  requestTimeout: {timeout}
  baseDomain: preview.example.com
pools:
  - name: redis
    type: RedisDatabase
    redisUrlSecretRef: {{namespace: {ns}, name: redis, key: url}}
{extra}"#
            )
        })
    }

    pub fn envs(&self) -> Api<PreviewEnvironment> {
        Api::namespaced(self.cp.client(), &self.ns)
    }

    /// A full-featured environment for pull request `number`.
    pub fn manifest(&self, name: &str, number: i64) -> serde_json::Value {
        json!({
            "apiVersion": "switchyard.dev/v1alpha1", "kind": "PreviewEnvironment",
            "metadata": {"name": name},
            "spec": {
                "repository": "acme/shop", "pullRequest": number, "branch": format!("feature-{number}"),
                "headSha": "abc1234", "project": "shop",
                "className": self.ns,
                "database": {"snapshot": SNAPSHOT, "strategy": "clone"},
                "redis": {"pool": "redis"},
                "env": [
                    {"name": "MAIL_HOST", "value": "smtp.example.com"},
                    {"name": "MAIL_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-secrets", "key": "mail-password"}}}
                ],
                "workers": [{"name": "default"}, {"name": "mail", "queue": "mail", "processes": 2}]
            }
        })
    }

    pub async fn create(&self, manifest: serde_json::Value) {
        let env: PreviewEnvironment = serde_json::from_value(manifest).expect("manifest");
        self.envs().create(&PostParams::default(), &env).await.expect("create env");
    }

    pub async fn delete(&self, name: &str) {
        self.envs().delete(name, &DeleteParams::default()).await.expect("delete env");
    }

    pub async fn condition(&self, name: &str, type_: &str) -> Option<(String, String, String)> {
        let env = self.envs().get_opt(name).await.ok()??;
        let c = conditions::get(&env.status?.conditions, type_)?.clone();
        Some((c.status, c.reason, c.message))
    }

    pub async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
    ) -> PreviewEnvironment {
        let result = wait_for(TIMEOUT, format!("{name} {type_}={status} {reason:?}"), || async {
            let env = self.envs().get_opt(name).await.ok()??;
            let c = conditions::get(&env.status.as_ref()?.conditions, type_)?;
            (c.status == status && reason.is_none_or(|r| c.reason == r)).then_some(env)
        })
        .await;
        match result {
            Ok(env) => env,
            Err(e) => {
                panic!("{e}; last status: {:#?}", self.envs().get_opt(name).await.ok().flatten().and_then(|e| e.status))
            }
        }
    }

    pub async fn wait_ready(&self, name: &str) -> PreviewEnvironment {
        self.wait_condition(name, "Ready", "True", None).await
    }

    pub async fn wait_gone(&self, name: &str) {
        let result = wait_for(TIMEOUT, format!("{name} to be deleted"), || async {
            matches!(self.envs().get_opt(name).await, Ok(None))
        })
        .await;
        if let Err(e) = result {
            panic!(
                "{e}; last: {:#?}",
                self.envs().get_opt(name).await.ok().flatten().map(|e| (e.metadata.finalizers, e.status))
            );
        }
    }

    /// Remote objects that are alive (not being removed) in the simulator.
    pub fn live(&self) -> Live {
        let w = self.forge.state();
        let mut live = Live::default();
        for s in w.sites.values().filter(|s| s.deleted_at.is_none()) {
            *live.sites.entry(s.name.clone()).or_default() += 1;
            let workers = w.background_processes.values().filter(|p| p.deleted_at.is_none() && p.site_id == Some(s.id));
            live.workers.insert(s.name.clone(), workers.count());
        }
        for d in w.databases.values().filter(|d| d.deleted_at.is_none()) {
            *live.databases.entry(d.name.clone()).or_default() += 1;
        }
        for u in w.database_users.values().filter(|u| u.deleted_at.is_none()) {
            *live.users.entry(u.name.clone()).or_default() += 1;
        }
        live.certificates = w.certificates.values().filter(|c| c.deleted_at.is_none()).count();
        live.all_workers = w.background_processes.values().filter(|p| p.deleted_at.is_none()).count();
        live
    }
}

/// Counts of live simulator objects by name.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Live {
    pub sites: BTreeMap<String, usize>,
    pub workers: BTreeMap<String, usize>,
    pub databases: BTreeMap<String, usize>,
    pub users: BTreeMap<String, usize>,
    pub certificates: usize,
    pub all_workers: usize,
}

/// Every status the apiserver held for one environment, in the order a watch
/// delivers them: intermediate writes that polling would miss.
pub struct StatusLog {
    seen: std::sync::Arc<std::sync::Mutex<Vec<PreviewEnvironmentStatus>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StatusLog {
    /// Starts watching `name` and returns once the watch holds its current status.
    pub async fn start(world: &World, name: &str) -> Self {
        use futures::StreamExt;
        use kube::runtime::WatchStreamExt;
        let config = kube::runtime::watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut stream = kube::runtime::watcher(world.envs(), config).applied_objects().boxed();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Some(Ok(env)) = stream.next().await {
                    seen.lock().unwrap().extend(env.status);
                }
            }
        });
        let log = Self { seen, task };
        log.wait_for(format!("a watch on {name}"), |_| Some(())).await;
        log
    }

    pub async fn wait_for<T>(
        &self,
        what: impl std::fmt::Display,
        found: impl Fn(&PreviewEnvironmentStatus) -> Option<T>,
    ) -> T {
        wait_for(TIMEOUT, what, || async { self.seen.lock().unwrap().iter().rev().find_map(&found) }).await.unwrap()
    }

    /// Statuses that said Ready while a step condition was not True.
    pub fn ready_with_unready_steps(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| conditions::is_true(&s.conditions, "Ready"))
            .flat_map(|s| s.conditions.iter().filter(|c| c.type_.ends_with("Ready") || c.type_ == "Deployed"))
            .filter(|c| c.status != "True")
            .map(|c| format!("Ready while {}={} ({})", c.type_, c.status, c.reason))
            .collect()
    }

    pub fn all(&self) -> Vec<PreviewEnvironmentStatus> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for StatusLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}
