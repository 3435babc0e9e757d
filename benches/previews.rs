//! PreviewEnvironment costs, measured against the real control plane, the Forge
//! simulator (backed by a real MariaDB), a real redis-server and a real operator:
//!
//! 1. Forge requests per environment lifecycle (apply -> Ready -> delete -> gone), by route;
//! 2. time for 25 environments to become Ready under a Forge rate limit, against the
//!    theoretical minimum (their requests sent back to back at exactly the limit), with one
//!    short delay per Forge step and again with Forge's own step durations (scaled);
//! 3. the `clone` strategy against `mysqldump | mysql` on a generated snapshot of
//!    more than 100 MB.
//!
//! `cargo bench --bench previews` prints ratios; it asserts nothing.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "../tests/preview_support/mod.rs"]
mod preview_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use preview_support::World;
use switchyard::backends::mysql::MysqlAdmin;
use switchyard_sim::forge::lifecycle::Timing;

const ENVS: usize = 25;
/// Forge's 60/min, scaled up 10x so the run takes minutes, not half an hour: the
/// ratio to the theoretical minimum does not depend on the scale.
const RATE_PER_MINUTE: u32 = 600;
/// Forge's step durations on the same 10x faster clock as the rate limit.
const TIME_SCALE: f64 = 0.1;

fn by_route(world: &World) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in world.forge.requests() {
        *counts.entry(format!("{} {}", r.method, r.route)).or_default() += 1;
    }
    counts
}

fn manifest(world: &World, name: &str, number: i64) -> serde_json::Value {
    let mut m = world.manifest(name, number);
    m["spec"]["database"] = serde_json::json!({"strategy": "empty"});
    m
}

async fn lifecycle() -> usize {
    let world = World::new("bench-life").await;
    let operator = world.operator();
    world.forge.clear_requests();
    world.create(manifest(&world, "one", 1)).await;
    world.wait_ready("one").await;
    let to_ready = world.forge.requests().len();
    world.delete("one").await;
    world.wait_gone("one").await;
    let counts = by_route(&world);
    let total: usize = counts.values().sum();
    println!(
        "== Forge requests for one environment (2 workers, TLS, empty database): {to_ready} to Ready, {total} for the whole lifecycle"
    );
    for (route, n) in &counts {
        println!("  {n:>4}  {route}");
    }
    drop(operator);
    to_ready
}

/// `timing`: the simulator's step durations (`None`: one short delay per step).
async fn many_under_the_limit(per_env: usize, timing: Option<Timing>) {
    let mut world = World::with("bench-many", |c| {
        c.rate_limit = RATE_PER_MINUTE;
        c.rate_window = Duration::from_secs(60);
        c.timing = timing;
    })
    .await;
    world.rate_per_minute = RATE_PER_MINUTE;
    let operator = world.operator();
    let started = Instant::now();
    for i in 0..ENVS {
        world.create(manifest(&world, &format!("env-{i}"), 1000 + i as i64)).await;
    }
    for i in 0..ENVS {
        world.wait_ready(&format!("env-{i}")).await;
    }
    let elapsed = started.elapsed();
    let requests = world.forge.requests();
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    let minimum = Duration::from_secs_f64(requests.len() as f64 * 60.0 / f64::from(RATE_PER_MINUTE));
    let ideal = Duration::from_secs_f64((per_env * ENVS) as f64 * 60.0 / f64::from(RATE_PER_MINUTE));
    let steps = match timing {
        Some(_) => format!("Forge's step durations scaled by {TIME_SCALE}"),
        None => "one short delay per step".to_string(),
    };
    println!("== {ENVS} environments under a {RATE_PER_MINUTE}/min Forge limit, {steps}");
    println!("  Forge requests per environment to Ready: {:.1}", requests.len() as f64 / ENVS as f64);
    println!(
        "  all Ready after {:.1} s; {} Forge requests; {throttled} answered 429",
        elapsed.as_secs_f64(),
        requests.len()
    );
    println!(
        "  theoretical minimum for those requests at the limit: {:.1} s -> {:.2}x",
        minimum.as_secs_f64(),
        elapsed.as_secs_f64() / minimum.as_secs_f64()
    );
    println!(
        "  ({ENVS} x {per_env} requests of a lone environment: {:.1} s -> {:.2}x; at Forge's real 60/min: {:.0} s)",
        ideal.as_secs_f64(),
        elapsed.as_secs_f64() / ideal.as_secs_f64(),
        elapsed.as_secs_f64() * f64::from(RATE_PER_MINUTE) / 60.0
    );
    drop(operator);
}

/// Four tables of about 40 MB each (1 KB rows, 65,536 each), built by doubling.
async fn generate_snapshot(conn: &mut mysql_async::Conn) -> u64 {
    conn.query_drop("CREATE DATABASE big_snapshot").await.expect("db");
    for t in 0..4 {
        conn.query_drop(format!(
            "CREATE TABLE big_snapshot.t{t} (id BIGINT AUTO_INCREMENT PRIMARY KEY, a CHAR(250), b CHAR(250), c CHAR(250), d CHAR(250), n INT);
             INSERT INTO big_snapshot.t{t} (a, b, c, d, n) VALUES (REPEAT('a', 250), REPEAT('b', 250), REPEAT('c', 250), REPEAT('d', 250), 1);"
        ))
        .await
        .expect("table");
        for _ in 0..16 {
            conn.query_drop(format!(
                "INSERT INTO big_snapshot.t{t} (a, b, c, d, n) SELECT a, b, c, d, n + 1 FROM big_snapshot.t{t}"
            ))
            .await
            .expect("double");
        }
    }
    let bytes: Option<u64> = conn
        .query_first("SELECT SUM(DATA_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'big_snapshot'")
        .await
        .expect("size");
    bytes.unwrap_or(0)
}

async fn clone_against_dump() {
    let world = World::new("bench-clone").await;
    let mut conn = world.mysql().await;
    let bytes = generate_snapshot(&mut conn).await;
    conn.query_drop("CREATE DATABASE via_clone; CREATE DATABASE via_dump").await.expect("targets");
    let admin = MysqlAdmin::new(&world.mariadb.url()).expect("admin");
    let started = Instant::now();
    admin.clone_database("big_snapshot", "via_clone", 4).await.expect("clone");
    let cloned = started.elapsed();
    admin.disconnect().await;

    let port = world.mariadb.port();
    let password =
        world.mariadb.url().split(':').nth(2).and_then(|s| s.split('@').next()).unwrap_or_default().to_string();
    let started = Instant::now();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mysqldump --no-defaults -h127.0.0.1 -P{port} -uroot -p\"$PW\" --single-transaction big_snapshot | \
             mariadb --no-defaults -h127.0.0.1 -P{port} -uroot -p\"$PW\" via_dump"
        ))
        .env("PW", &password)
        .status()
        .expect("mysqldump | mysql");
    let dumped = started.elapsed();
    if !status.success() {
        println!("mysqldump | mysql failed ({status}); no comparison");
        return;
    }
    let rows: Option<i64> = conn
        .query_first("SELECT (SELECT COUNT(*) FROM via_clone.t0) - (SELECT COUNT(*) FROM via_dump.t0)")
        .await
        .expect("compare");
    conn.disconnect().await.ok();
    println!("== database fill from a {:.0} MB snapshot (4 tables)", bytes as f64 / 1e6);
    println!("  clone (server-side, 4 tables at once): {:.1} s", cloned.as_secs_f64());
    println!("  mysqldump | mysql:                     {:.1} s", dumped.as_secs_f64());
    println!(
        "  -> clone takes {:.2}x the time of mysqldump | mysql (row count difference {rows:?})",
        cloned.as_secs_f64() / dumped.as_secs_f64()
    );
}

/// `cargo bench --bench previews [-- lifecycle|limit|realistic|clone]`: all parts, or the named ones.
#[tokio::main]
async fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let run = |part: &str| wanted.is_empty() || wanted.iter().any(|w| w == part);
    if run("lifecycle") || run("limit") || run("realistic") {
        let per_env = lifecycle().await;
        if run("limit") {
            many_under_the_limit(per_env, None).await;
        }
        if run("realistic") {
            many_under_the_limit(per_env, Some(Timing::realistic(TIME_SCALE))).await;
        }
    }
    if run("clone") {
        clone_against_dump().await;
    }
}
