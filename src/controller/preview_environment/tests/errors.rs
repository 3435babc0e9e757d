//! Forge errors: what Forge will never accept stalls with a reason naming it;
//! the rest is retried, and a Ready environment stays Ready while it is.

use super::*;
use crate::api::conditions::{RECONCILING, STALLED};
use crate::forge::ForgeError;

fn server_error(status: u16) -> ForgeError {
    ForgeError::Server { status, message: "upstream trouble".into() }
}

#[tokio::test]
async fn an_unauthorized_token_stalls_with_forge_unauthorized() {
    let mut h = Harness::new(spec());
    h.forge.fail("list_databases", ForgeError::Unauthorized { message: "Unauthenticated.".into() });
    assert_eq!(h.pass().await.stalled(), "ForgeUnauthorized");
    assert_eq!(h.cond(STALLED), ("True".into(), "ForgeUnauthorized".into()));
    assert_eq!(h.cond(READY), ("False".into(), "ForgeUnauthorized".into()));
    assert!(h.forge.methods().iter().all(|m| !m.starts_with("create_")));
    let warned = h.cluster.events_named("ForgeUnauthorized");
    assert_eq!(warned.len(), 1);
    assert!(warned[0].warning && warned[0].note.contains("token"));
    // A new token (the Secret watch runs the pass again): it proceeds.
    h.until_ready(4).await;
    assert_eq!(h.cond(STALLED).0, "False");
}

#[tokio::test]
async fn a_rejected_request_stalls_with_forge_rejected_and_is_not_resent() {
    let mut h = Harness::new(spec());
    let rejected = ForgeError::Validation {
        message: "The given data was invalid.".into(),
        errors: [("php_version".to_string(), vec!["The selected php version is invalid.".to_string()])].into(),
    };
    h.forge.fail("create_site", rejected);
    assert_eq!(h.pass().await.stalled(), "ForgeRejected");
    assert_eq!(h.forge.count("create_site"), 1, "a 422 that is not 'taken' is not retried");
    assert!(h.forge.sites().is_empty());
    let message = &h.condition(STALLED).unwrap().message;
    assert!(message.contains("php_version"), "{message}");
    // What was recorded before the stall is kept.
    assert!(h.status().database_id.is_some());
}

#[tokio::test]
async fn a_server_error_on_a_ready_environment_keeps_it_ready_but_reconciling() {
    let mut h = Harness::new(spec());
    h.until_ready(4).await;
    h.forge.fail("get_site", server_error(502));
    let e = h.pass().await;
    let e = e.error();
    assert!(matches!(e, Error::Forge(_)) && e.is_retryable(), "{e:?}");
    assert!(h.is_ready(), "looking failed, not the environment");
    assert_eq!(h.cond(RECONCILING), ("True".into(), "ForgeError".into()));
    assert_eq!(h.cond(STALLED).0, "False");
    h.pass().await.requeue();
    assert!(h.is_ready());
    assert_eq!(h.cond(RECONCILING).0, "False");
}

#[tokio::test]
async fn a_server_error_while_provisioning_says_so_and_the_next_pass_continues() {
    let mut h = Harness::new(spec());
    // Every attempt of `ensure_database` answers 500 (FAST allows three).
    h.forge.fail_times("create_database", server_error(500), 3);
    h.pass().await.error();
    assert_eq!(h.cond(READY), ("False".into(), "ForgeError".into()));
    assert_eq!(h.cond(RECONCILING).0, "True");
    assert_eq!(h.status().database_name.as_deref(), Some(DATABASE), "the claim is kept");
    h.until_ready(4).await;
    assert_eq!(h.forge.count("create_database"), 4);
    assert_eq!(h.forge.databases().len(), 1);
}

#[tokio::test]
async fn a_lost_create_database_answer_is_looked_up_and_adopted_not_sent_again() {
    let mut h = Harness::new(spec());
    h.forge.fail_after_processing("create_database", server_error(504));
    h.until_ready(4).await;
    assert_eq!(h.forge.count("create_database"), 1);
    assert_eq!(h.forge.databases().len(), 1);
    assert_eq!(h.cond(STALLED).0, "False", "our own schema, found after a lost answer, is not 'taken'");
}
