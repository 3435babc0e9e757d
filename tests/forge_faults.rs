//! With ~20% injected 500s and timeouts (some after the request was processed), a scripted
//! create-site / create-database / deploy sequence converges on exactly one of each.

mod forge_support;

use forge_support::*;
use std::time::Duration;
use switchyard::forge::ensure::{self, PollOptions, wait_until};
use switchyard::forge::*;
use switchyard_sim::forge::TokenSpec;
use switchyard_sim::forge::faults::{FaultAction, FaultSpec};

const SERVER: u64 = 1;

fn status(code: u16) -> FaultAction {
    FaultAction::Status { status: code, body: None, retry_after: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_sequence_survives_twenty_percent_faults_without_duplicates() {
    let token = unique_token("faults");
    let sim = sim_with(vec![TokenSpec::all_scopes(token.clone())], |_| {}).await;
    let api = client_with(&sim.base_url(), &token, |c| {
        c.request_timeout = Duration::from_millis(400);
        c.retry.max_retries = 10;
        c.retry.min_delay = Duration::from_millis(5);
        c.retry.max_delay = Duration::from_millis(100);
    });
    let poll = PollOptions { timeout: Duration::from_secs(30), tolerate_not_found: true, ..fast_poll() };
    let hang = FaultAction::Hang { ms: Some(2_000) };

    // Deterministic coverage of the worst case first: each create is processed, then answered with a 500.
    for route in ["*/servers/{server}/sites", "*/database/schemas", "*/deployments"] {
        sim.inject_fault(FaultSpec::new(status(500)).method("POST").route(route).after_processing().times(1));
    }
    // Then ~20% random trouble on every request, before and after processing.
    sim.inject_fault(FaultSpec::new(status(500)).probability(0.06));
    sim.inject_fault(FaultSpec::new(status(503)).probability(0.03));
    sim.inject_fault(FaultSpec::new(hang.clone()).probability(0.04));
    sim.inject_fault(FaultSpec::new(status(500)).after_processing().probability(0.04));
    sim.inject_fault(FaultSpec::new(hang).after_processing().probability(0.04));

    for n in 0..3 {
        let label = format!("pr-{}", 100 + n);
        let db_name = format!("pr_{}_app", 100 + n);
        let site = ensure::ensure_site(&api, SERVER, &CreateSite::on_forge(&label, "laravel"), fast_ensure())
            .await
            .unwrap()
            .value;
        wait_until(async || api.get_site(site.id).await, Site::is_ready, poll).await.unwrap();
        let db = ensure::ensure_database(
            &api,
            SERVER,
            &CreateDatabase { name: db_name.clone(), ..Default::default() },
            fast_ensure(),
        )
        .await
        .unwrap()
        .value;
        let deployment = ensure::deploy(&api, SERVER, site.id, fast_ensure()).await.unwrap();
        let done = wait_until(
            async || api.get_deployment(SERVER, site.id, deployment.id).await,
            Deployment::is_terminal,
            poll,
        )
        .await
        .unwrap();
        assert!(done.succeeded());

        let state = sim.state();
        assert_eq!(state.sites.values().filter(|s| s.name == label).count(), 1, "duplicate site {label}");
        assert_eq!(state.databases.values().filter(|d| d.name == db_name).count(), 1, "duplicate database {db_name}");
        assert_eq!(state.deployments.values().filter(|d| d.site_id == site.id).count(), 1, "duplicate deployment");
        assert_eq!(db.name, db_name);
    }
    sim.clear_faults();

    let faults: Vec<_> = sim.requests().into_iter().filter_map(|r| r.fault).collect();
    let after = faults.iter().filter(|f| f.contains("after processing")).count();
    println!("{} requests, {} faults injected ({} after processing)", sim.requests().len(), faults.len(), after);
    assert!(after >= 3, "the after-processing faults did not fire");
    assert_eq!(sim.state().sites.len(), 3);
    assert_eq!(sim.state().databases.len(), 3);
}
