//! Database names: claimed in status before anything is created, never adopted
//! when they exist unclaimed, and a recorded schema that vanished is made again.

use super::*;
use crate::api::conditions::STALLED;
use crate::api::preview_environment::{CloneStrategy, DatabaseSettings};

fn dump_spec() -> PreviewEnvironmentSpec {
    let mut s = spec();
    s.database = Some(DatabaseSettings { snapshot: Some("shop_snapshot".into()), strategy: CloneStrategy::Dump });
    s
}

#[tokio::test]
async fn an_existing_schema_without_our_claim_stalls_with_database_name_taken() {
    let mut h = Harness::new(spec());
    let theirs = h.forge.add_database(DATABASE, "installed");
    for _ in 0..2 {
        assert_eq!(h.pass().await.stalled(), "DatabaseNameTaken");
    }
    assert_eq!(h.cond(STALLED), ("True".into(), "DatabaseNameTaken".into()));
    assert_eq!(h.status().database_name, None, "never claimed");
    assert_eq!(h.status().database_id, None, "never adopted");
    for method in ["create_database", "create_database_user", "delete_database", "delete_database_user"] {
        assert_eq!(h.forge.count(method), 0, "{method}");
    }
    assert_eq!(h.forge.databases().iter().map(|d| d.id).collect::<Vec<_>>(), [theirs]);
    assert_eq!(h.cluster.events_named("DatabaseNameTaken").len(), 1);
}

#[tokio::test]
async fn an_existing_database_user_without_our_claim_stalls_with_database_name_taken() {
    let mut h = Harness::new(spec());
    h.forge.add_database_user(DATABASE, "installed");
    assert_eq!(h.pass().await.stalled(), "DatabaseNameTaken");
    let message = &h.condition(STALLED).unwrap().message;
    assert!(message.contains("database user pr_1_shop"), "{message}");
    assert_eq!(h.forge.count("create_database"), 0);
    assert_eq!(h.forge.count("create_database_user"), 0);
    assert_eq!(h.status().database_user_id, None);
}

#[tokio::test]
async fn database_names_are_recorded_in_status_before_the_schema_is_created() {
    let mut h = Harness::new(spec());
    h.pass().await;
    let create = h.forge.first_seq("create_database").expect("schema created");
    let create_user = h.forge.first_seq("create_database_user").expect("user created");
    let claim =
        h.cluster.writes().into_iter().find(|w| w.status.database_name.is_some()).expect("a write claims the names");
    assert!(claim.seq < create, "claim written at {} but create_database called at {create}", claim.seq);
    assert!(claim.seq < create_user);
    assert_eq!(claim.status.database_name.as_deref(), Some(DATABASE));
    assert_eq!(claim.status.database_user.as_deref(), Some(DATABASE));
    assert_eq!(claim.status.database_id, None, "claimed before it exists");
}

#[tokio::test]
async fn a_schema_created_just_before_a_crash_is_adopted_under_the_claimed_name() {
    let mut h = Harness::new(spec());
    h.world.crash_after("create_database");
    h.pass().await.error();
    assert_eq!(h.status().database_name.as_deref(), Some(DATABASE), "the claim survived");
    assert_eq!(h.status().database_id, None);
    h.world.recover();
    h.until_ready(4).await;
    assert_eq!(h.forge.count("create_database"), 1);
    assert_eq!(h.forge.databases().len(), 1);
    assert_eq!(h.status().database_id, Some(h.forge.databases()[0].id as i64));
}

#[tokio::test]
async fn names_that_only_contain_ours_do_not_count_as_taken() {
    let mut h = Harness::new(spec());
    let schema = h.forge.add_database("pr_1_shop_old", "installed");
    let user = h.forge.add_database_user("pr_1_shop_old", "installed");
    h.until_ready(4).await;
    assert_eq!(h.forge.count("create_database"), 1);
    assert_ne!(h.status().database_id, Some(schema as i64));
    assert_ne!(h.status().database_user_id, Some(user as i64));
    assert_eq!(h.forge.databases().len(), 2);
}

#[tokio::test]
async fn a_recorded_schema_that_vanished_is_created_again() {
    let mut h = Harness::new(spec());
    h.until_ready(4).await;
    let old = h.status().database_id.unwrap() as u64;
    h.forge.remove_database(old);
    h.pass().await.requeue();
    assert_eq!(h.forge.count("create_database"), 2);
    let new = h.status().database_id.expect("recorded") as u64;
    assert_ne!(new, old);
    assert_eq!(h.forge.databases().iter().map(|d| (d.id, d.name.as_str())).collect::<Vec<_>>(), [(new, DATABASE)]);
    assert_eq!(h.status().database_name.as_deref(), Some(DATABASE));
    h.until_ready(2).await;
}

#[tokio::test]
async fn a_dump_runs_once_as_a_site_command_before_the_env_file() {
    let mut h = Harness::new(dump_spec());
    h.until_ready(5).await;
    h.pass().await;
    assert_eq!(h.forge.count("run_site_command"), 1);
    let commands = h.forge.commands(h.site_id());
    assert_eq!(commands.len(), 1);
    assert_eq!(
        commands[0].command,
        "mysqldump --single-transaction --routines --triggers shop_snapshot | mysql pr_1_shop"
    );
    assert_eq!(h.status().database_seeded, Some(true));
    assert!(
        h.cluster
            .writes()
            .iter()
            .any(|w| conditions::get(&w.status.conditions, "DatabaseReady")
                .is_some_and(|c| c.reason == "DatabaseSeeding")),
        "the dump was waited for"
    );
    let put = h.forge.first_seq("put_environment").unwrap();
    let dumped = h.forge.first_seq("run_site_command").unwrap();
    assert!(dumped < put, "the .env (and the deploy) wait for the dump");
}

/// A schema made again is empty; `databaseSeeded` still says it was filled, so
/// the dump never runs into it (and for `dump` the finished command of the old
/// schema, still in the site's command list, would count as done as well).
#[tokio::test]
#[ignore = "bug: a re-created schema is not filled again (pass/database.rs keeps databaseSeeded)"]
async fn a_recreated_schema_is_filled_again_from_the_snapshot() {
    let mut h = Harness::new(dump_spec());
    h.until_ready(5).await;
    let old = h.status().database_id.unwrap() as u64;
    h.forge.remove_database(old);
    h.until_ready(5).await;
    assert_eq!(h.forge.count("create_database"), 2);
    assert_eq!(h.forge.count("run_site_command"), 2, "the new, empty schema is filled from the snapshot");
}
