//! Retries with backoff (certificate, deployment), crash-safe deployment
//! requests, and deploy gating. Backoffs pass by moving recorded timestamps back.

use std::time::Duration;

use super::*;
use crate::api::LocalObjectRef;
use crate::api::conditions::RECONCILING;
use crate::api::preview_environment::{DeploymentRequest, LastDeployment};
use crate::forge::{ForgeError, TransportKind};
use crate::logic::gating::{self, Gate, Wait};

const CERT: &str = "CertificateReady";

/// Runs until the (failed) certificate is seen as failed.
async fn failed_certificate(h: &mut Harness) {
    h.forge.knobs(|k| k.certificate_status = "failed");
    for _ in 0..3 {
        h.pass().await.requeue();
        if h.cond(CERT).1 == "CertificateFailed" {
            return;
        }
    }
    panic!("certificate never seen failed: {:?}", h.cond(CERT));
}

#[tokio::test]
async fn a_failed_certificate_warns_once_and_is_not_requested_again_inside_its_backoff() {
    let mut h = Harness::new(spec());
    failed_certificate(&mut h).await;
    assert_eq!(h.cond(CERT), ("False".into(), "CertificateFailed".into()));
    assert_eq!(h.cond(READY), ("False".into(), "CertificateFailed".into()));
    assert_eq!(h.cond(RECONCILING).0, "False", "a failure waiting out its backoff is not progress");
    assert_eq!(h.status().certificate_failures, Some(1));
    for _ in 0..3 {
        let next = h.pass().await.requeue();
        assert!(next <= Duration::from_secs(15), "comes back when the backoff ends: {next:?}");
    }
    assert_eq!(h.forge.count("request_certificate"), 1);
    assert_eq!(h.forge.count("delete_certificate"), 0);
    assert_eq!(h.status().certificate_failures, Some(1), "a failure is counted once");
    let warnings = h.cluster.events_named("CertificateFailed");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].warning);
}

#[tokio::test]
async fn a_failed_certificate_is_requested_again_after_its_backoff_and_the_old_one_deleted() {
    let mut h = Harness::new(spec());
    failed_certificate(&mut h).await;
    let first = h.status().certificate_id.unwrap();

    h.age_condition(CERT, Duration::from_secs(16));
    h.pass().await;
    assert_eq!(h.forge.count("delete_certificate"), 1);
    assert!(h.forge.args_of("delete_certificate")[0].ends_with(&format!("certificate={first}")));
    assert_eq!(h.forge.count("request_certificate"), 2);
    let second = h.status().certificate_id.unwrap();
    assert_ne!(second, first);
    assert_eq!(h.cond(CERT), ("Unknown".into(), "CertificateIssuing".into()));

    // The second one fails too: counted, with a doubled backoff.
    h.pass().await;
    assert_eq!(h.cond(CERT), ("False".into(), "CertificateFailed".into()));
    assert_eq!(h.status().certificate_failures, Some(2));
    h.age_condition(CERT, Duration::from_secs(20));
    h.pass().await;
    assert_eq!(h.forge.count("request_certificate"), 2, "20 s is inside the second backoff (30 s)");

    h.forge.knobs(|k| k.certificate_status = "installed");
    h.age_condition(CERT, Duration::from_secs(31));
    h.pass().await;
    assert_eq!(h.forge.count("request_certificate"), 3);
    h.until_ready(2).await;
    assert_eq!(h.status().certificate_failures, None);
    assert_eq!(h.cluster.events_named("CertificateFailed").len(), 2, "one Warning per failure");
}

#[tokio::test]
async fn a_failed_deployment_is_retried_only_after_its_backoff() {
    let mut h = Harness::new(spec());
    h.forge.knobs(|k| k.deployment_status = "queued");
    h.pass().await;
    assert_eq!(h.forge.count("trigger_deployment"), 1);
    assert_eq!(h.cond("Deployed"), ("Unknown".into(), "Deploying".into()));

    h.forge.set_deployments_status("failed");
    h.pass().await;
    assert_eq!(h.cond("Deployed"), ("False".into(), "DeploymentFailed".into()));
    assert_eq!(h.cond(READY), ("False".into(), "DeploymentFailed".into()));
    let last = h.status().last_deployment.clone().unwrap();
    assert_eq!((last.status.as_str(), last.attempts), ("failed", Some(1)));
    assert!(last.finished_at.is_some());
    for _ in 0..3 {
        h.pass().await;
    }
    assert_eq!(h.forge.count("trigger_deployment"), 1, "not inside the backoff");
    assert_eq!(h.cluster.events_named("DeploymentFailed").len(), 1);

    h.age_last_deployment(Duration::from_secs(16));
    h.pass().await;
    assert_eq!(h.forge.count("trigger_deployment"), 2);
    assert_eq!(h.status().last_deployment.as_ref().and_then(|d| d.attempts), Some(2));
    h.forge.set_deployments_status("finished");
    h.until_ready(2).await;
    assert_eq!(h.forge.count("trigger_deployment"), 2);
}

#[tokio::test]
async fn a_deployment_requested_just_before_a_crash_is_adopted_not_triggered_again() {
    let mut h = Harness::new(spec());
    h.world.crash_after("trigger_deployment");
    h.pass().await.error();
    let request = h.status().deployment_request.clone().expect("request recorded before triggering");
    assert_eq!(request.sha.as_deref(), Some("abc1234"));
    assert_eq!(h.status().last_deployment, None, "the answer was lost with the operator");
    let started = h.forge.deployments(h.site_id());
    assert_eq!(started.len(), 1);

    h.world.recover();
    h.until_ready(3).await;
    assert_eq!(h.forge.count("trigger_deployment"), 1);
    assert_eq!(h.status().last_deployment.as_ref().map(|d| d.id), Some(started[0].id as i64));
    assert_eq!(h.status().deployment_request, None);
}

#[tokio::test]
async fn an_adopted_deployment_that_already_failed_waits_out_its_backoff() {
    let mut h = Harness::new(spec());
    h.forge.knobs(|k| k.deployment_status = "failed");
    h.world.crash_after("trigger_deployment");
    h.pass().await.error();
    h.world.recover();
    h.pass().await;
    assert_eq!(h.forge.count("trigger_deployment"), 1, "the failure was just seen: its backoff starts now");
    assert_eq!(h.cond("Deployed"), ("False".into(), "DeploymentFailed".into()));
    assert!(h.status().last_deployment.as_ref().is_some_and(|d| d.finished_at.is_some()));
}

#[tokio::test]
async fn a_recorded_request_whose_trigger_never_reached_forge_is_triggered_once() {
    let mut h = Harness::new(spec());
    let refused = ForgeError::Transport { kind: TransportKind::Connect, message: "connection refused".into() };
    h.forge.fail("trigger_deployment", refused);
    h.pass().await.error();
    assert!(h.status().deployment_request.is_some());
    assert!(h.forge.deployments(h.site_id()).is_empty());
    h.until_ready(3).await;
    assert_eq!(h.forge.deployments(h.site_id()).len(), 1);
    assert_eq!(h.status().deployment_request, None);
}

#[tokio::test]
async fn an_older_deployment_is_not_taken_for_the_answer_to_a_recorded_request() {
    let mut h = Harness::new(spec());
    h.until_ready(4).await;
    let old = h.status().last_deployment.clone().unwrap();
    // A request recorded after `old` whose trigger was lost: `old` is not its answer.
    let status = h.status_mut();
    status.last_deployment = None;
    status.deployment_request = Some(DeploymentRequest {
        after_id: Some(old.id),
        sha: Some("abc1234".into()),
        environment_hash: old.environment_hash.clone(),
        attempt: 1,
        ..Default::default()
    });
    h.pass().await;
    assert_eq!(h.forge.count("trigger_deployment"), 2);
    let LastDeployment { id, .. } = h.status().last_deployment.clone().unwrap();
    assert!(id > old.id);
}

#[tokio::test]
async fn a_new_head_sha_deploys_again() {
    let mut h = Harness::new(spec());
    h.until_ready(4).await;
    h.edit_spec(|s| s.head_sha = Some("def5678".into()));
    h.pass().await;
    assert_eq!(h.forge.count("trigger_deployment"), 2);
    h.until_ready(2).await;
    assert_eq!(h.status().last_deployment.as_ref().and_then(|d| d.sha.as_deref()), Some("def5678"));
    assert_eq!(h.status().observed_generation, Some(2));
}

#[tokio::test]
async fn a_closed_deploy_gate_holds_the_deployment_until_it_opens() {
    let mut s = spec();
    s.stack = Some("checkout".into());
    s.graph_ref = Some(LocalObjectRef { name: "shop-graph".into() });
    let mut h = Harness::new(s);
    let wait = Wait {
        reason: gating::DEPENDENCIES_NOT_READY,
        waiting_for: vec!["acme/api".into()],
        message: "acme/api is not Ready".into(),
    };
    h.cluster.set_deploy_gate(Some(Gate::Wait(wait)));
    for _ in 0..3 {
        assert!(h.pass().await.requeue() < REQUEUE);
        assert_eq!(h.cond("DependenciesReady"), ("False".into(), "DependenciesNotReady".into()));
        assert_eq!(h.cond("Deployed"), ("Unknown".into(), "WaitingForDependencies".into()));
        assert_eq!(h.cond(READY).0, "False");
    }
    assert_eq!(h.forge.count("trigger_deployment"), 0);
    assert_eq!(h.forge.count("put_environment"), 1, "provisioning does not wait for dependencies");

    h.cluster.set_deploy_gate(Some(Gate::Open));
    h.until_ready(3).await;
    assert_eq!(h.cond("DependenciesReady").0, "True");
    assert_eq!(h.forge.count("trigger_deployment"), 1);
}
