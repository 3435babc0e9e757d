//! `teardown::tear_down`: only what is provably this environment's is deleted,
//! and the Redis claim goes only once Forge shows nothing left. `teardown::run`
//! (the `deletionPolicy: Orphan` path, the missing-forge-config path, loading the
//! token) needs the real `PreviewContext` and is not covered here.

use super::*;
use crate::api::preview_environment::RedisSettings;

fn with_redis() -> PreviewEnvironmentSpec {
    let mut s = spec();
    s.redis = Some(RedisSettings { pool: Some("redis-main".into()) });
    s
}

async fn ready(spec: PreviewEnvironmentSpec) -> Harness {
    let mut h = Harness::new(spec);
    h.cluster.bind_redis(Some("3"));
    h.until_ready(4).await;
    h
}

#[tokio::test]
async fn teardown_deletes_workers_certificates_site_user_and_schema_then_releases_redis() {
    let h = ready(with_redis()).await;
    let (site, status) = (h.site_id(), h.status().clone());
    let waiting = h.tear_down().await.expect_err("Forge confirms the deletes on a later look");
    assert!(matches!(waiting, Error::Waiting(_)), "{waiting:?}");
    assert_eq!(h.cluster.releases(), 0, "Redis is released only once Forge shows nothing");

    assert_eq!(h.forge.count("delete_background_process"), 2);
    assert_eq!(h.forge.count("delete_certificate"), 1);
    assert_eq!(h.forge.args_of("delete_site"), [format!("site={site}")]);
    assert_eq!(h.forge.args_of("delete_database_user"), [format!("user={}", status.database_user_id.unwrap())]);
    assert_eq!(h.forge.args_of("delete_database"), [format!("database={}", status.database_id.unwrap())]);
    let seq = |m| h.forge.first_seq(m).unwrap();
    assert!(seq("delete_background_process") < seq("delete_site"));
    assert!(seq("delete_certificate") < seq("delete_site"));

    h.tear_down().await.expect("nothing left");
    assert_eq!(h.cluster.releases(), 1);
    assert_eq!(h.cluster.events_named("TornDown").len(), 1);
    assert!(h.forge.sites().is_empty() && h.forge.databases().is_empty() && h.forge.database_users().is_empty());
    assert!(h.forge.certificates().is_empty(), "went with the site");
    assert_eq!(h.forge.count("delete_site"), 1, "nothing deleted twice");
}

#[tokio::test]
async fn teardown_waits_while_forge_is_still_removing_and_deletes_nothing_twice() {
    let h = ready(with_redis()).await;
    h.forge.knobs(|k| k.deletes_linger = true);
    for _ in 0..3 {
        let e = h.tear_down().await.expect_err("Forge still removing");
        assert!(e.to_string().contains("site pr-1.preview.test"), "{e}");
    }
    assert_eq!(h.cluster.releases(), 0);
    for method in ["delete_site", "delete_database", "delete_database_user"] {
        assert_eq!(h.forge.count(method), 1, "{method}");
    }
    h.forge.finish_removals();
    h.tear_down().await.expect("gone");
    assert_eq!(h.cluster.releases(), 1);
}

#[tokio::test]
async fn teardown_never_deletes_a_site_without_our_tag() {
    let h = ready(spec()).await;
    let site = h.site_id();
    // Same name, not ours (say, ours was replaced by hand with someone else's).
    h.forge.set_site(site, |s| s.tags = vec!["someone-else".into()]);
    h.tear_down().await.expect_err("our database is still being checked");
    h.tear_down().await.expect("nothing of ours left");
    for method in ["delete_site", "delete_background_process", "delete_certificate", "delete_domain"] {
        assert_eq!(h.forge.count(method), 0, "{method}");
    }
    assert!(h.forge.site(site).is_some());
    assert_eq!(h.forge.workers(site).len(), 2);
    assert_eq!(h.forge.count("delete_database"), 1, "the recorded database is ours");
    assert_eq!(h.cluster.releases(), 1);
}

/// Must fail if teardown could delete a database the environment did not record.
#[tokio::test]
async fn teardown_never_deletes_a_database_the_environment_did_not_record() {
    let mut h = Harness::new(spec());
    // Someone else's schema and user under our names: the environment stalls ...
    let schema = h.forge.add_database(DATABASE, "installed");
    let user = h.forge.add_database_user(DATABASE, "installed");
    assert_eq!(h.pass().await.stalled(), "DatabaseNameTaken");
    assert_eq!(h.status().database_name, None);
    // ... and is deleted.
    let result = h.tear_down().await;
    assert_eq!(h.forge.count("delete_database"), 0, "deleted a schema it never claimed");
    assert_eq!(h.forge.count("delete_database_user"), 0, "deleted a user it never claimed");
    result.expect("nothing of ours on Forge");
    assert!(h.forge.databases().iter().any(|d| d.id == schema));
    assert!(h.forge.database_users().iter().any(|u| u.id == user));
    assert_eq!(h.cluster.releases(), 1);
}

#[tokio::test]
async fn teardown_of_an_environment_without_status_deletes_no_database() {
    let h = Harness::new(spec());
    h.forge.add_database(DATABASE, "installed");
    h.forge.add_database_user(DATABASE, "installed");
    let result = h.tear_down().await;
    let deletes: Vec<_> = h.forge.methods().into_iter().filter(|m| m.starts_with("delete_")).collect();
    assert!(deletes.is_empty(), "{deletes:?}");
    result.expect("nothing recorded, nothing to delete");
    assert_eq!(h.forge.databases().len(), 1);
    assert_eq!(h.cluster.releases(), 1);
}

#[tokio::test]
async fn teardown_deletes_a_site_of_ours_that_was_never_recorded() {
    let mut h = Harness::new(spec());
    h.world.crash_after("create_site");
    h.pass().await.error();
    assert_eq!(h.status().site_id, None);
    h.world.recover();
    // The site carries our tag: found by name and removed, not leaked.
    h.tear_down().await.expect_err("Forge confirms on the next look");
    assert_eq!(h.forge.count("delete_site"), 1);
    h.tear_down().await.expect("gone");
    assert!(h.forge.sites().is_empty());
    assert!(h.forge.databases().is_empty(), "the claimed schema went too");
}
