//! Prometheus metrics, served on `/metrics`.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a reconcile outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub kind: String,
    pub result: String,
}

/// Labels naming a kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// Labels of a claim count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClaimLabels {
    pub pool: String,
    pub phase: String,
}

/// Labels naming a pool.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: String,
}

/// Labels of a GitHub delivery or poll outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GithubEventLabels {
    /// `webhook` or `poll`.
    pub source: String,
    pub event: String,
    /// `accepted`, `ignored`, `rejected` or `failed`.
    pub result: String,
    pub reason: String,
}

/// Labels naming a Branch.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BranchLabels {
    pub namespace: String,
    pub branch: String,
}

/// Every metric the operator exports, registered once at start.
pub struct Metrics {
    pub registry: Registry,
    /// Reconciles by kind and result (`ok` or the error's metric label).
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile duration by kind.
    pub reconcile_duration: Family<KindLabels, Histogram>,
    /// 1 while this replica holds the leader Lease.
    pub leader: Gauge<i64, AtomicI64>,
    /// SharedResourceClaims by pool and phase.
    pub claims: Family<ClaimLabels, Gauge<i64, AtomicI64>>,
    /// Values a pool can hand out (absent for unbounded pools).
    pub pool_capacity: Family<PoolLabels, Gauge<i64, AtomicI64>>,
    /// Values of a pool currently held.
    pub pool_usage: Family<PoolLabels, Gauge<i64, AtomicI64>>,
    /// GitHub deliveries and poll findings by source, event, result and reason.
    pub github_events: Family<GithubEventLabels, Counter>,
    /// 1 while a Branch is Reachable, 0 while it is not (absent while unknown).
    pub branch_up: Family<BranchLabels, Gauge<i64, AtomicI64>>,
    /// Duration of each health probe of a Branch, failed ones included.
    pub branch_probe_duration: Family<BranchLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchyard");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register("reconciles", "Reconciles by kind and result", reconciles.clone());
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(seconds_histogram);
        registry.register("reconcile_duration_seconds", "Reconcile duration by kind", reconcile_duration.clone());
        let leader = Gauge::default();
        registry.register("leader", "1 while this replica holds the leader Lease", leader.clone());
        let claims = Family::<ClaimLabels, Gauge<i64, AtomicI64>>::default();
        registry.register("claims", "SharedResourceClaims by pool and phase", claims.clone());
        let pool_capacity = Family::<PoolLabels, Gauge<i64, AtomicI64>>::default();
        registry.register("pool_capacity", "Values a pool can hand out", pool_capacity.clone());
        let pool_usage = Family::<PoolLabels, Gauge<i64, AtomicI64>>::default();
        registry.register("pool_usage", "Values of a pool currently held", pool_usage.clone());
        let github_events = Family::<GithubEventLabels, Counter>::default();
        registry.register(
            "github_events",
            "GitHub deliveries and poll findings by result and reason",
            github_events.clone(),
        );
        let branch_up = Family::<BranchLabels, Gauge<i64, AtomicI64>>::default();
        registry.register("branch_up", "1 while a Branch is Reachable, 0 while it is not", branch_up.clone());
        let branch_probe_duration = Family::<BranchLabels, Histogram>::new_with_constructor(seconds_histogram);
        registry.register(
            "branch_probe_duration_seconds",
            "Duration of Branch health probes",
            branch_probe_duration.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_duration,
            leader,
            claims,
            pool_capacity,
            pool_usage,
            github_events,
            branch_up,
            branch_probe_duration,
        }
    }
}

/// Buckets from 5 ms to about 41 s.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Metrics {
    /// Records one reconcile of `kind` that ended with `result` after `elapsed`.
    pub fn observe_reconcile(&self, kind: &str, result: &str, elapsed: Duration) {
        self.reconciles.get_or_create(&ReconcileLabels { kind: kind.into(), result: result.into() }).inc();
        self.reconcile_duration.get_or_create(&KindLabels { kind: kind.into() }).observe(elapsed.as_secs_f64());
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
