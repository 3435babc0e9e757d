//! Drift repair on a Ready environment's drift check: what changed on Forge out
//! of band is put back, and no status written while repairing says Ready.

use super::*;

#[tokio::test]
async fn a_site_deleted_out_of_band_is_replaced_with_its_workers_env_file_and_deployment() {
    let mut h = Harness::new(spec());
    h.until_ready(4).await;
    let old = h.site_id();
    let writes_before = h.cluster.write_count();
    h.forge.remove_site(old);

    h.pass().await.requeue();
    let missing = h.cluster.events_named("SiteMissing");
    assert_eq!(missing.len(), 1, "{:?}", h.cluster.events());
    assert!(missing[0].warning);
    let new = h.site_id();
    assert_ne!(new, old);
    assert_eq!(h.forge.count("create_site"), 2);
    assert_eq!(h.cond(READY).0, "False");

    // The first write of the repair already takes Ready down, with the site's
    // steps reset: none of them vouches for the new site yet.
    let repair = &h.cluster.writes()[writes_before..];
    let first = &repair.first().expect("the repair is written").status;
    assert_eq!(conditions::get(&first.conditions, READY).map(|c| c.status.as_str()), Some("False"));
    for step in ["WorkersReady", "CertificateReady", "Deployed"] {
        let c = conditions::get(&first.conditions, step).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("Unknown", "SiteReplaced"), "{step}");
    }
    assert!(repair.iter().all(|w| !conditions::is_true(&w.status.conditions, READY)));

    h.until_ready(3).await;
    assert_eq!(h.forge.workers(new).len(), 2, "workers re-created on the new site");
    assert_eq!(h.forge.count("create_background_process"), 4);
    assert_eq!(h.forge.count("put_environment"), 2);
    assert!(h.forge.environment(new).is_some());
    assert_eq!(h.forge.count("trigger_deployment"), 2);
    assert_eq!(h.forge.count("request_certificate"), 2);
    let mut ids: Vec<i64> = h.forge.workers(new).iter().map(|w| w.id as i64).collect();
    ids.sort();
    let mut recorded = h.status().worker_ids.clone();
    recorded.sort();
    assert_eq!(recorded, ids, "old worker ids forgotten");
}

#[tokio::test]
async fn a_worker_deleted_out_of_band_is_recreated_on_a_drift_check() {
    let mut h = Harness::new(spec());
    h.until_ready(4).await;
    let site = h.site_id();
    let gone = h.forge.workers(site)[0].clone();
    h.forge.remove_worker(gone.id);

    h.pass().await;
    assert_eq!(h.forge.count("create_background_process"), 3);
    assert!(h.forge.args_of("create_background_process")[2].ends_with(&gone.command));
    assert_eq!(h.cond("WorkersReady"), ("Unknown".into(), "WorkersInstalling".into()));
    assert_eq!(h.cond(READY).0, "False");
    h.until_ready(2).await;
    let live: Vec<i64> = h.forge.workers(site).iter().map(|w| w.id as i64).collect();
    assert_eq!(live.len(), 2);
    assert!(h.status().worker_ids.iter().all(|id| live.contains(id)));
    assert_eq!(h.forge.count("create_site"), 1);
}

#[tokio::test]
async fn an_extra_worker_on_the_site_is_deleted_on_a_drift_check() {
    let mut h = Harness::new(spec());
    h.until_ready(4).await;
    let extra = h.forge.add_worker(h.site_id(), "php artisan horizon", "installed");
    h.pass().await;
    assert_eq!(h.forge.args_of("delete_background_process"), [format!("process={extra}")]);
    h.until_ready(2).await;
    assert_eq!(h.forge.workers(h.site_id()).len(), 2);
}

#[tokio::test]
async fn an_env_file_changed_on_forge_is_rewritten_on_a_drift_check() {
    let mut h = Harness::new(spec());
    h.until_ready(4).await;
    let site = h.site_id();
    let ours = h.forge.environment(site).unwrap();
    h.forge.set_environment(site, "APP_URL=https://elsewhere.test\n");
    h.pass().await;
    assert_eq!(h.forge.count("put_environment"), 2);
    assert_eq!(h.forge.environment(site).as_deref(), Some(ours.as_str()));
    assert!(h.is_ready());
    // Only a trailing newline differs: not a drift.
    h.forge.set_environment(site, ours.trim_end());
    h.pass().await;
    assert_eq!(h.forge.count("put_environment"), 2);
}

#[tokio::test]
async fn a_php_version_changed_on_forge_is_set_back_with_update_site() {
    let mut h = Harness::new(spec());
    h.until_ready(4).await;
    let site = h.site_id();
    h.forge.set_site(site, |s| s.php_version = Some("php81".into()));
    h.pass().await;
    assert_eq!(h.forge.args_of("update_site"), [format!("site={site} php=Some(\"php84\")")]);
    assert_eq!(h.forge.site(site).unwrap().php_version.as_deref(), Some("php84"));
    h.pass().await;
    assert_eq!(h.forge.count("update_site"), 1);
    assert_eq!(h.forge.count("create_site"), 1);
}
