//! How many apiserver requests a SharedResourceClaim costs, and how long 1,000
//! claims take to bind, against a real control plane and a real operator process.
//!
//! `cargo bench --bench claims` prints; it asserts nothing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use switchyard::api::{
    self,
    shared_resource_claim::{ClaimPhase, SharedResourceClaim},
};
use switchyard_testenv::{ControlPlane, wait_for};

const CLAIMS: usize = 1000;
const OPERATOR_RESOURCES: [&str; 4] = ["sharedresourceclaims", "leases", "events", "secrets"];

/// Requests the apiserver served for the resources the operator touches.
async fn apiserver_requests(cp: &ControlPlane) -> f64 {
    let request = http::Request::get("/metrics").body(Vec::new()).expect("request");
    let text = cp.client().request_text(request).await.expect("apiserver /metrics");
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| OPERATOR_RESOURCES.iter().any(|r| l.contains(&format!("resource=\"{r}\""))))
        // The bench polls with LISTs; the operator lists once per watch (re)start.
        .filter(|l| !l.contains("verb=\"LIST\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::main]
async fn main() {
    let cp = ControlPlane::start().await.expect("control plane");
    cp.apply_crds(&api::all_crds()).await.expect("CRDs");
    let ns = cp.create_unique_namespace("bench").await.expect("namespace");
    let config = {
        let ns = ns.clone();
        move |port: u16| {
            format!(
                "server: {{listen: \"127.0.0.1:{port}\"}}\nleaderElection: {{enabled: false}}\n\
                 controller: {{namespace: {ns}, systemNamespace: {ns}, concurrency: 8}}\n\
                 pools:\n  - name: ports\n    type: Port\n    range: {{start: 20000, end: 21999}}\n"
            )
        }
    };
    let _operator = support::Operator::start(&cp, config);
    let claims: Api<SharedResourceClaim> = Api::namespaced(cp.client(), &ns);

    let before = apiserver_requests(&cp).await;
    let started = Instant::now();
    futures::stream::iter(0..CLAIMS)
        .for_each_concurrent(32, |i| {
            let claims = claims.clone();
            async move {
                let claim: SharedResourceClaim = serde_json::from_value(json!({
                    "apiVersion": "switchyard.dev/v1alpha1", "kind": "SharedResourceClaim",
                    "metadata": {"name": format!("c{i:04}")}, "spec": {"type": "Port", "pool": "ports"}
                }))
                .expect("claim");
                claims.create(&PostParams::default(), &claim).await.expect("create");
            }
        })
        .await;
    let created = started.elapsed();
    wait_for(Duration::from_secs(600), "every claim Bound", || async {
        let list = claims.list(&ListParams::default()).await.ok()?;
        let bound =
            list.items.iter().filter(|c| c.status.as_ref().and_then(|s| s.phase) == Some(ClaimPhase::Bound)).count();
        (bound == CLAIMS).then_some(())
    })
    .await
    .expect("all bound");
    let bound = started.elapsed();
    // Let trailing writes (Events) land before counting.
    let after = wait_for(Duration::from_secs(30), "request count to settle", || async {
        let a = apiserver_requests(&cp).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let b = apiserver_requests(&cp).await;
        (a == b).then_some(b)
    })
    .await
    .expect("settled");
    // The benchmark's own creates are not the operator's.
    let operator_requests = after - before - CLAIMS as f64;
    println!("claims:                         {CLAIMS}");
    println!("time to create (client only):   {:.2?}", created);
    println!("time until all Bound:           {:.2?}", bound);
    println!("bind time / create time:        {:.2}x", bound.as_secs_f64() / created.as_secs_f64());
    println!(
        "apiserver requests per claim:   {:.2} (claims, leases, events, secrets; LISTs excluded)",
        operator_requests / CLAIMS as f64
    );
}
