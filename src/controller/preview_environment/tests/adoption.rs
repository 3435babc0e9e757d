//! The site found by name: ours (adopted), someone else's (never touched), ours
//! but being removed (waited for), and names that only look like ours.

use super::*;
use crate::api::conditions::STALLED;
use crate::forge::ForgeError;

const DELETES: [&str; 6] = [
    "delete_site",
    "delete_database",
    "delete_database_user",
    "delete_background_process",
    "delete_certificate",
    "delete_domain",
];

fn assert_nothing_deleted(h: &Harness) {
    for method in DELETES {
        assert_eq!(h.forge.count(method), 0, "{method}");
    }
}

#[tokio::test]
async fn a_site_created_just_before_a_crash_is_adopted_not_duplicated() {
    let mut h = Harness::new(spec());
    h.world.crash_after("create_site");
    h.pass().await.error();
    assert_eq!(h.forge.sites().len(), 1, "Forge made the site");
    assert_eq!(h.status().site_id, None, "the operator died before recording it");

    h.world.recover();
    h.until_ready(4).await;
    assert_eq!(h.forge.count("create_site"), 1);
    assert_eq!(h.forge.sites().len(), 1);
    assert_eq!(h.site_id(), h.forge.sites()[0].id);
    assert_nothing_deleted(&h);
}

#[tokio::test]
async fn a_lost_create_site_answer_is_looked_up_and_adopted_not_sent_again() {
    let mut h = Harness::new(spec());
    let lost = ForgeError::Server { status: 502, message: "bad gateway".into() };
    h.forge.fail_after_processing("create_site", lost);
    h.until_ready(4).await;
    assert_eq!(h.forge.count("create_site"), 1);
    assert_eq!(h.forge.sites().len(), 1);
}

#[tokio::test]
async fn a_site_with_another_environments_tag_stalls_with_site_name_taken() {
    let mut h = Harness::new(spec());
    let theirs = h.forge.add_site(DOMAIN, &["switchyard", "switchyard-uid-2"], "installed");
    assert_eq!(h.pass().await.stalled(), "SiteNameTaken");
    assert_eq!(h.cond(STALLED), ("True".into(), "SiteNameTaken".into()));
    assert_eq!(h.cond(READY).0, "False");
    assert_eq!(h.pass().await.stalled(), "SiteNameTaken");

    assert_eq!(h.forge.count("create_site"), 0);
    assert_nothing_deleted(&h);
    for method in ["update_site", "put_environment", "list_background_processes", "list_domains"] {
        assert_eq!(h.forge.count(method), 0, "{method} on a site that is not ours");
    }
    assert_eq!(h.status().site_id, None);
    assert_eq!(h.forge.site(theirs).expect("untouched").tags, ["switchyard", "switchyard-uid-2"]);
    // The schema (its step runs before the site's) is claimed in status, so teardown removes it.
    assert_eq!(h.status().database_name.as_deref(), Some(DATABASE));
    let warnings = h.cluster.events_named("SiteNameTaken");
    assert_eq!(warnings.len(), 1, "warned once: {warnings:?}");
    assert!(warnings[0].warning);
}

#[tokio::test]
async fn an_untagged_site_stalls_with_site_name_taken_and_nothing_is_created() {
    let mut s = spec();
    s.database = None;
    let mut h = Harness::new(s);
    h.forge.add_site(DOMAIN, &[], "installed");
    assert_eq!(h.pass().await.stalled(), "SiteNameTaken");
    let created: Vec<_> = h.forge.methods().into_iter().filter(|m| m.starts_with("create_")).collect();
    assert!(created.is_empty(), "{created:?}");
    assert_nothing_deleted(&h);
    assert_eq!(h.forge.sites().len(), 1);
}

#[tokio::test]
async fn a_site_of_ours_being_removed_is_waited_for_then_created_anew() {
    let mut h = Harness::new(spec());
    let old = h.forge.add_site(DOMAIN, &["switchyard", &h.owner_tag()], "removing");
    for _ in 0..3 {
        assert!(h.pass().await.requeue() < REQUEUE);
        assert_eq!(h.cond("SiteReady"), ("Unknown".into(), "SiteRemoving".into()));
    }
    assert_eq!(h.forge.count("create_site"), 0);
    assert_eq!(h.forge.count("delete_site"), 0, "a site on its way out is not deleted twice");
    assert_eq!(h.status().site_id, None, "a removing site is not adopted");

    h.forge.finish_removals();
    h.until_ready(4).await;
    assert_eq!(h.forge.count("create_site"), 1);
    assert_ne!(h.site_id(), old);
}

#[tokio::test]
async fn a_site_whose_name_only_contains_ours_is_not_mistaken_for_it() {
    let mut h = Harness::new(spec());
    // `filter[name]` matches partially: Forge lists this one for our domain too.
    let decoy = h.forge.add_site(&format!("old-{DOMAIN}"), &["someone"], "installed");
    h.until_ready(4).await;
    assert_eq!(h.forge.count("create_site"), 1);
    assert_ne!(h.site_id(), decoy);
    assert!(h.forge.site(decoy).is_some());
    assert_nothing_deleted(&h);
}
