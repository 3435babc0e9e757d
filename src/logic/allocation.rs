//! Allocation from pools: which values a claim may take, in what order, whether it
//! may join a value's holders, and how a hold is recorded.
//!
//! A hold is recorded in one Lease per (pool, value) in the operator's namespace.
//! The Lease lists its holders; every change to it is a compare-and-swap on its
//! `resourceVersion`, and creating it is the lock for a free value, so two
//! operator processes can never both take an exclusive value. A list of Leases is
//! only a hint of what is free; the write decides.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::NamespacedSecretKeyRef;
use crate::api::shared_resource_claim::{ClaimMode, ConflictPolicy, ResourceType};
use crate::logic::dns;

/// Annotation holding the JSON-encoded [`ValueRecord`].
pub const RECORD_ANNOTATION: &str = "switchyard.dev/allocation";
/// Label naming the pool on every allocation Lease.
pub const POOL_LABEL: &str = "switchyard.dev/pool";
/// Label marking a Lease as an allocation record (as opposed to the leader Lease).
pub const KIND_LABEL: &str = "switchyard.dev/record";

/// The highest number of alternative labels tried under `SubdomainSeparate`.
const MAX_SUBDOMAIN_SUFFIX: u32 = 99;

/// A pool of allocatable values, as the operator config defines it (`pools[]`),
/// validated when the config is loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Pool name, referenced by `spec.pool`.
    pub name: String,
    /// What it hands out, with exactly the settings of that resource type.
    pub kind: PoolKind,
    /// Who may claim from it; anyone when absent.
    pub claimants: Option<Claimants>,
}

/// The namespaces whose claims a pool serves (`namespaces` and/or `namespaceSelector`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claimants {
    pub namespaces: Vec<String>,
    pub selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
}

impl Claimants {
    /// Whether a claim in `namespace` (with `labels`) may take from the pool.
    pub fn allow(&self, namespace: &str, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.namespaces.iter().any(|n| n == namespace)
            || self.selector.as_ref().is_some_and(|s| crate::logic::preview::class::selector_matches(s, labels))
    }
}

/// One variant per resource type, each carrying the settings only it has.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolKind {
    /// Ports in `range`, never those on `deny`; dynamic (unrequested) claims take
    /// values from `dynamic_from` up, so static requests below it rarely collide.
    Port { range: PortRange, deny: Vec<u32>, dynamic_from: Option<u32> },
    /// DNS labels under `base_domain`.
    Domain { base_domain: String },
    /// Database numbers of the Redis server whose URL the Secret holds; 0 and
    /// `reserved` are never handed out.
    RedisDatabase { redis_url_secret_ref: NamespacedSecretKeyRef, reserved: Vec<u32> },
    /// Database names (`<prefix><claim name>`) on Forge server `server_id`.
    Database { server_id: i64, prefix: Option<String> },
    /// Named volumes, each held by up to its capacity.
    Volume { resources: Vec<NamedResource> },
    /// Named networks, each held by up to its capacity.
    Network { resources: Vec<NamedResource> },
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    pub start: u32,
    pub end: u32,
}

/// A named volume or network.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NamedResource {
    pub name: String,
    #[serde(default = "one")]
    pub capacity: u32,
}

fn one() -> u32 {
    1
}

impl Pool {
    /// The resource type the pool hands out.
    pub fn type_(&self) -> ResourceType {
        match self.kind {
            PoolKind::Port { .. } => ResourceType::Port,
            PoolKind::Domain { .. } => ResourceType::Domain,
            PoolKind::RedisDatabase { .. } => ResourceType::RedisDatabase,
            PoolKind::Database { .. } => ResourceType::Database,
            PoolKind::Volume { .. } => ResourceType::Volume,
            PoolKind::Network { .. } => ResourceType::Network,
        }
    }

    /// The named resources of a Volume or Network pool; none for other types.
    fn resources(&self) -> &[NamedResource] {
        match &self.kind {
            PoolKind::Volume { resources } | PoolKind::Network { resources } => resources,
            _ => &[],
        }
    }
}

/// Who holds a value, as stored in its Lease.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueRecord {
    /// The value, unsanitised.
    pub value: String,
    /// Whether the holders hold it exclusively.
    pub exclusive: bool,
    /// How many holders the value admits.
    pub capacity: u32,
    /// Holder claim UID -> `namespace/name`.
    pub holders: BTreeMap<String, String>,
}

/// What a claim asks for, reduced to what allocation needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub uid: String,
    /// `namespace/name` of the claim.
    pub holder: String,
    pub type_: ResourceType,
    pub value: Option<String>,
    pub mode: ClaimMode,
    pub capacity: Option<u32>,
    pub conflict_policy: ConflictPolicy,
}

/// Why a claim cannot be served by its pool as specified: terminal until the spec
/// or the config changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("pool {0:?} is not in the operator config")]
    UnknownPool(String),
    #[error("pool {pool:?} hands out {pool_type:?}, not {claim_type:?}")]
    PoolTypeMismatch { pool: String, pool_type: ResourceType, claim_type: ResourceType },
    #[error("{0}")]
    ValueOutOfRange(String),
    #[error("{0}")]
    ValueReserved(String),
}

impl Invalid {
    /// The condition reason for this problem.
    pub fn reason(&self) -> &'static str {
        match self {
            Invalid::UnknownPool(_) => "UnknownPool",
            Invalid::PoolTypeMismatch { .. } => "PoolTypeMismatch",
            Invalid::ValueOutOfRange(_) => "ValueOutOfRange",
            Invalid::ValueReserved(_) => "ValueReserved",
        }
    }
}

/// Whether a claim may join a value's holders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Join {
    /// Already a holder (e.g. the operator crashed after writing the Lease).
    AlreadyHeld,
    /// May join; the record to write.
    Joined(ValueRecord),
    /// Held by others in a way that excludes this claim.
    Conflict { holder: String },
}

/// The capacity a claim gives a value it is first to take.
pub fn capacity_for(pool: &Pool, request: &Request, value: &str) -> u32 {
    if request.mode == ClaimMode::Exclusive {
        return 1;
    }
    let configured = pool.resources().iter().find(|r| r.name == value).map(|r| r.capacity);
    configured.or(request.capacity).unwrap_or(1).max(1)
}

/// Decides whether `request` may hold `value`, given its current record (if any).
pub fn join(pool: &Pool, current: Option<&ValueRecord>, request: &Request, value: &str) -> Join {
    let exclusive = request.mode == ClaimMode::Exclusive;
    let Some(current) = current.filter(|r| !r.holders.is_empty()) else {
        let mut holders = BTreeMap::new();
        holders.insert(request.uid.clone(), request.holder.clone());
        return Join::Joined(ValueRecord {
            value: value.to_string(),
            exclusive,
            capacity: capacity_for(pool, request, value),
            holders,
        });
    };
    if current.holders.contains_key(&request.uid) {
        return Join::AlreadyHeld;
    }
    let holder = current.holders.values().next().cloned().unwrap_or_default();
    if current.exclusive || exclusive || current.holders.len() as u32 >= current.capacity {
        return Join::Conflict { holder };
    }
    let mut next = current.clone();
    next.holders.insert(request.uid.clone(), request.holder.clone());
    Join::Joined(next)
}

/// The record without `uid`; `None` when no holder is left (delete the Lease).
pub fn leave(current: &ValueRecord, uid: &str) -> Option<ValueRecord> {
    let mut next = current.clone();
    next.holders.remove(uid);
    (!next.holders.is_empty()).then_some(next)
}

/// Checks a claim against its pool before anything is allocated.
pub fn validate(
    pool_name: &str,
    pool: Option<&Pool>,
    request: &Request,
    redis_databases: Option<u32>,
) -> Result<(), Invalid> {
    let pool = pool.ok_or_else(|| Invalid::UnknownPool(pool_name.to_string()))?;
    if pool.type_() != request.type_ {
        return Err(Invalid::PoolTypeMismatch {
            pool: pool_name.to_string(),
            pool_type: pool.type_(),
            claim_type: request.type_,
        });
    }
    let Some(value) = &request.value else { return Ok(()) };
    match &pool.kind {
        PoolKind::Port { range, deny, .. } => {
            let port: u32 = value.parse().map_err(|_| Invalid::ValueOutOfRange(format!("{value:?} is not a port")))?;
            if port < range.start || port > range.end {
                return Err(Invalid::ValueOutOfRange(format!(
                    "port {port} is outside pool {pool_name}'s range {}-{}",
                    range.start, range.end
                )));
            }
            if deny.contains(&port) {
                return Err(Invalid::ValueReserved(format!("port {port} is on pool {pool_name}'s deny list")));
            }
        }
        PoolKind::RedisDatabase { .. } => {
            let db: u32 =
                value.parse().map_err(|_| Invalid::ValueOutOfRange(format!("{value:?} is not a database number")))?;
            if let Some(count) = redis_databases
                && db >= count
            {
                return Err(Invalid::ValueOutOfRange(format!(
                    "database {db} does not exist: the server has databases 0-{}",
                    count.saturating_sub(1)
                )));
            }
            if reserved_redis(pool).contains(&db) {
                return Err(Invalid::ValueReserved(format!("database {db} is reserved in pool {pool_name}")));
            }
        }
        PoolKind::Domain { .. } => {
            if !dns::is_label(value) {
                return Err(Invalid::ValueOutOfRange(format!("{value:?} is not a DNS label")));
            }
        }
        PoolKind::Volume { resources } | PoolKind::Network { resources } => {
            if !resources.iter().any(|r| r.name == *value) {
                return Err(Invalid::ValueOutOfRange(format!("{value:?} is not a resource of pool {pool_name}")));
            }
        }
        PoolKind::Database { .. } => {}
    }
    Ok(())
}

fn reserved_redis(pool: &Pool) -> Vec<u32> {
    let mut reserved = match &pool.kind {
        PoolKind::RedisDatabase { reserved, .. } => reserved.clone(),
        _ => Vec::new(),
    };
    // Database 0 is where clients land without SELECT: never hand it out.
    reserved.push(0);
    reserved
}

/// Whether `db` may ever be flushed on release.
pub fn flushable(pool: &Pool, db: u32) -> bool {
    !reserved_redis(pool).contains(&db)
}

/// How many holds a pool admits in all; `None` for pools without a bound
/// (domains, databases) or a Redis pool whose size is not known yet.
pub fn capacity(pool: &Pool, redis_databases: Option<u32>) -> Option<u64> {
    match &pool.kind {
        PoolKind::Port { range, deny, .. } => {
            let denied = deny.iter().filter(|p| (range.start..=range.end).contains(p)).count() as u64;
            Some(u64::from(range.end - range.start + 1) - denied)
        }
        PoolKind::RedisDatabase { .. } => {
            let count = redis_databases?;
            Some((0..count).filter(|d| !reserved_redis(pool).contains(d)).count() as u64)
        }
        PoolKind::Volume { resources } | PoolKind::Network { resources } => {
            Some(resources.iter().map(|r| u64::from(r.capacity)).sum())
        }
        PoolKind::Domain { .. } | PoolKind::Database { .. } => None,
    }
}

/// Values a claim without a requested value tries, in order.
///
/// Ports take the dynamic band (`dynamicFrom` up) first so claims that request a
/// specific low port rarely collide with dynamic ones.
pub fn dynamic_candidates(
    pool: &Pool,
    request: &Request,
    claim_name: &str,
    redis_databases: Option<u32>,
) -> Vec<String> {
    match &pool.kind {
        PoolKind::Port { range, deny, dynamic_from } => {
            let from = dynamic_from.unwrap_or(range.start);
            (from..=range.end).chain(range.start..from).filter(|p| !deny.contains(p)).map(|p| p.to_string()).collect()
        }
        PoolKind::RedisDatabase { .. } => {
            let reserved = reserved_redis(pool);
            (0..redis_databases.unwrap_or(0)).filter(|d| !reserved.contains(d)).map(|d| d.to_string()).collect()
        }
        PoolKind::Domain { .. } => subdomain_candidates(&dns::to_label(claim_name)),
        PoolKind::Volume { resources } | PoolKind::Network { resources } => {
            resources.iter().map(|r| r.name.clone()).collect()
        }
        PoolKind::Database { prefix, .. } => {
            let prefix = prefix.clone().unwrap_or_default();
            vec![format!("{prefix}{}", claim_name.replace('-', "_"))]
        }
    }
    .into_iter()
    .filter(|_| request.value.is_none())
    .collect()
}

/// Values tried after the requested one is taken, per the conflict policy.
pub fn conflict_candidates(pool: &Pool, request: &Request, redis_databases: Option<u32>) -> Vec<String> {
    let Some(requested) = &request.value else { return Vec::new() };
    match request.conflict_policy {
        ConflictPolicy::Fail => Vec::new(),
        ConflictPolicy::SubdomainSeparate => subdomain_candidates(requested).into_iter().skip(1).collect(),
        ConflictPolicy::Reassign => {
            let dynamic = Request { value: None, ..request.clone() };
            let mut all = dynamic_candidates(pool, &dynamic, "", redis_databases);
            // The next free value after the requested one, wrapping around.
            if let Ok(n) = requested.parse::<u32>() {
                all.sort_by_key(|v| v.parse::<u32>().map(|v| (v <= n, v)).unwrap_or((true, u32::MAX)));
            }
            all.retain(|v| v != requested);
            all
        }
    }
}

fn subdomain_candidates(label: &str) -> Vec<String> {
    std::iter::once(label.to_string())
        .chain((2..=MAX_SUBDOMAIN_SUFFIX).map(|n| {
            let suffix = format!("-{n}");
            let base: String = label.chars().take(63 - suffix.len()).collect();
            format!("{}{suffix}", base.trim_end_matches('-'))
        }))
        .collect()
}

/// The value as users see it: a Domain label becomes a full domain.
pub fn display_value(pool: &Pool, value: &str) -> String {
    match &pool.kind {
        PoolKind::Domain { base_domain } => format!("{value}.{base_domain}"),
        _ => value.to_string(),
    }
}

/// Deterministic name of the Lease recording holds on `value` of `pool`.
pub fn lease_name(pool: &str, value: &str) -> String {
    let candidate = format!("alloc-{pool}-{value}");
    let clean = candidate.len() <= 253
        && candidate.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !candidate.ends_with(['-', '.']);
    if clean {
        return candidate;
    }
    // Sanitising can map two values to one name; the hash keeps them apart.
    let hash = hex::encode(&Sha256::digest(value.as_bytes())[..6]);
    let sanitized: String = value
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
        .take(180)
        .collect();
    format!("alloc-{pool}-{}-{hash}", sanitized.trim_matches(['-', '.']))
}

/// When a bound claim expires: `ttl` after it was bound or last renewed, but never
/// later than `ttl` from now, so a skewed clock elsewhere cannot extend a hold.
pub fn expires_at(bound_at: i64, renewed_at: Option<i64>, ttl: Duration, now: i64) -> i64 {
    let ttl = ttl.as_secs() as i64;
    let start = renewed_at.map_or(bound_at, |r| r.max(bound_at));
    (start + ttl).min(now + ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of `type_`: ports 8000-8010 without 8005 (dynamic from 8008), domains
    /// under preview.example.com, Redis without database 1, or resource vol-a (capacity 2).
    fn pool(type_: ResourceType) -> Pool {
        let resources = vec![NamedResource { name: "vol-a".into(), capacity: 2 }];
        let kind = match type_ {
            ResourceType::Port => PoolKind::Port {
                range: PortRange { start: 8000, end: 8010 },
                deny: vec![8005],
                dynamic_from: Some(8008),
            },
            ResourceType::Domain => PoolKind::Domain { base_domain: "preview.example.com".into() },
            ResourceType::RedisDatabase => PoolKind::RedisDatabase {
                redis_url_secret_ref: NamespacedSecretKeyRef {
                    namespace: "ns".into(),
                    name: "redis".into(),
                    key: "url".into(),
                },
                reserved: vec![1],
            },
            ResourceType::Database => PoolKind::Database { server_id: 1, prefix: None },
            ResourceType::Volume => PoolKind::Volume { resources },
            ResourceType::Network => PoolKind::Network { resources },
        };
        Pool { name: "p".into(), kind, claimants: None }
    }

    fn request(uid: &str, mode: ClaimMode, value: Option<&str>) -> Request {
        Request {
            uid: uid.into(),
            holder: format!("ns/{uid}"),
            type_: ResourceType::Port,
            value: value.map(str::to_string),
            mode,
            capacity: None,
            conflict_policy: ConflictPolicy::Fail,
        }
    }

    #[test]
    fn exclusive_value_admits_one_holder() {
        let p = pool(ResourceType::Port);
        let Join::Joined(record) = join(&p, None, &request("a", ClaimMode::Exclusive, None), "8008") else { panic!() };
        assert_eq!(join(&p, Some(&record), &request("a", ClaimMode::Exclusive, None), "8008"), Join::AlreadyHeld);
        assert_eq!(
            join(&p, Some(&record), &request("b", ClaimMode::Shared, None), "8008"),
            Join::Conflict { holder: "ns/a".into() }
        );
    }

    #[test]
    fn shared_value_admits_up_to_capacity() {
        let p = pool(ResourceType::Volume);
        let mut r = request("a", ClaimMode::Shared, Some("vol-a"));
        r.type_ = ResourceType::Volume;
        let Join::Joined(one) = join(&p, None, &r, "vol-a") else { panic!() };
        assert_eq!(one.capacity, 2, "capacity comes from the pool's resource");
        let Join::Joined(two) = join(&p, Some(&one), &Request { uid: "b".into(), ..r.clone() }, "vol-a") else {
            panic!()
        };
        assert!(matches!(
            join(&p, Some(&two), &Request { uid: "c".into(), ..r.clone() }, "vol-a"),
            Join::Conflict { .. }
        ));
        let exclusive = Request { uid: "d".into(), mode: ClaimMode::Exclusive, ..r };
        assert!(matches!(join(&p, Some(&one), &exclusive, "vol-a"), Join::Conflict { .. }));
        assert_eq!(leave(&two, "a").map(|r| r.holders.len()), Some(1));
        assert_eq!(leave(&one, "a"), None);
    }

    #[test]
    fn dynamic_ports_prefer_the_upper_band_and_skip_the_deny_list() {
        let p = pool(ResourceType::Port);
        let c = dynamic_candidates(&p, &request("a", ClaimMode::Exclusive, None), "x", None);
        assert_eq!(c, ["8008", "8009", "8010", "8000", "8001", "8002", "8003", "8004", "8006", "8007"]);
    }

    #[test]
    fn reassign_takes_the_next_free_port_after_the_requested_one() {
        let p = pool(ResourceType::Port);
        let mut r = request("a", ClaimMode::Exclusive, Some("8003"));
        r.conflict_policy = ConflictPolicy::Reassign;
        let c = conflict_candidates(&p, &r, None);
        assert_eq!(&c[..3], ["8004", "8006", "8007"]);
        assert!(!c.contains(&"8003".to_string()) && !c.contains(&"8005".to_string()));
    }

    #[test]
    fn subdomain_separation_yields_distinct_labels() {
        let p = pool(ResourceType::Domain);
        let mut r = request("a", ClaimMode::Exclusive, Some("shop"));
        r.type_ = ResourceType::Domain;
        r.conflict_policy = ConflictPolicy::SubdomainSeparate;
        assert_eq!(&conflict_candidates(&p, &r, None)[..2], ["shop-2", "shop-3"]);
        assert_eq!(display_value(&p, "shop-2"), "shop-2.preview.example.com");
    }

    #[test]
    fn redis_never_hands_out_zero_or_reserved_or_missing_databases() {
        let p = pool(ResourceType::RedisDatabase);
        let mut r = request("a", ClaimMode::Exclusive, None);
        r.type_ = ResourceType::RedisDatabase;
        assert_eq!(dynamic_candidates(&p, &r, "x", Some(4)), ["2", "3"]);
        assert!(!flushable(&p, 0) && !flushable(&p, 1) && flushable(&p, 2));
        r.value = Some("1".into());
        assert_eq!(validate("p", Some(&p), &r, Some(4)).unwrap_err().reason(), "ValueReserved");
        r.value = Some("9".into());
        assert_eq!(validate("p", Some(&p), &r, Some(4)).unwrap_err().reason(), "ValueOutOfRange");
    }

    #[test]
    fn validation_names_the_problem() {
        let p = pool(ResourceType::Port);
        let r = request("a", ClaimMode::Exclusive, Some("9000"));
        assert_eq!(validate("p", None, &r, None).unwrap_err().reason(), "UnknownPool");
        assert_eq!(validate("p", Some(&p), &r, None).unwrap_err().reason(), "ValueOutOfRange");
        let r = request("a", ClaimMode::Exclusive, Some("8005"));
        assert_eq!(validate("p", Some(&p), &r, None).unwrap_err().reason(), "ValueReserved");
        let mut r = request("a", ClaimMode::Exclusive, None);
        r.type_ = ResourceType::Domain;
        assert_eq!(validate("p", Some(&p), &r, None).unwrap_err().reason(), "PoolTypeMismatch");
    }

    #[test]
    fn pool_capacity_excludes_denied_and_reserved_values() {
        assert_eq!(capacity(&pool(ResourceType::Port), None), Some(10));
        assert_eq!(capacity(&pool(ResourceType::RedisDatabase), Some(16)), Some(14));
        assert_eq!(capacity(&pool(ResourceType::RedisDatabase), None), None);
        assert_eq!(capacity(&pool(ResourceType::Volume), None), Some(2));
        assert_eq!(capacity(&pool(ResourceType::Domain), None), None);
    }

    #[test]
    fn lease_names_are_valid_and_distinct() {
        assert_eq!(lease_name("ports", "8080"), "alloc-ports-8080");
        let a = lease_name("vols", "Data_A");
        let b = lease_name("vols", "data-a");
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'));
    }

    #[test]
    fn expiry_is_capped_by_the_observers_clock() {
        let ttl = Duration::from_secs(100);
        assert_eq!(expires_at(1000, None, ttl, 1050), 1100);
        assert_eq!(expires_at(1000, Some(1080), ttl, 1090), 1180);
        // A bound time in the future (skewed clock) cannot push expiry past now + ttl.
        assert_eq!(expires_at(5000, None, ttl, 1000), 1100);
    }
}
