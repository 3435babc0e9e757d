//! Schemas and users created through the API really exist in MariaDB, and go away on delete.

mod forge_support;

use forge_support::*;
use switchyard::forge::ensure::wait_until;
use switchyard::forge::*;
use switchyard_sim::forge::TokenSpec;
use switchyard_sim::testsupport::mariadb::MariaDb;

const SERVER: u64 = 1;

#[tokio::test]
async fn schema_and_user_are_created_and_dropped_in_mariadb() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let mariadb =
        tokio::task::spawn_blocking(MariaDb::start).await.unwrap().expect("mariadbd starts (run e2e/install-deps.sh)");
    let token = unique_token("mariadb");
    let url = mariadb.url();
    let sim = sim_with(vec![TokenSpec::all_scopes(token.clone())], |c| c.mysql_url = Some(url)).await;
    let api = client_with(&sim.base_url(), &token, |_| {});
    let exists_db = |name: &str| mariadb.database_exists(name).unwrap();
    let exists_user = |name: &str| mariadb.user_exists(name).unwrap();

    let db = api
        .create_database(
            SERVER,
            &CreateDatabase {
                name: "pr_42_app".into(),
                user: Some("pr_42".into()),
                password: Some(Password::new("pw-42'\\x")),
            },
        )
        .await
        .unwrap();
    assert!(exists_db("pr_42_app"));
    assert!(exists_user("pr_42"));
    let grants = mariadb.query("SHOW GRANTS FOR 'pr_42'@'%'").unwrap();
    assert!(grants.iter().flatten().any(|g| g.contains("ALL PRIVILEGES ON `pr_42_app`.*")), "{grants:?}");

    let other = api
        .create_database(SERVER, &CreateDatabase { name: "pr_42_cache".into(), ..Default::default() })
        .await
        .unwrap();
    let reader = api
        .create_database_user(
            SERVER,
            &CreateDatabaseUser {
                name: "pr_42_ro".into(),
                password: Password::new("ro"),
                database_ids: vec![db.id],
                read_only: Some(true),
            },
        )
        .await
        .unwrap();
    assert!(exists_user("pr_42_ro"));
    let grants = mariadb.query("SHOW GRANTS FOR 'pr_42_ro'@'%'").unwrap();
    assert!(grants.iter().flatten().any(|g| g.contains("GRANT SELECT ON `pr_42_app`.*")), "{grants:?}");

    // PUT replaces the grants.
    api.update_database_user(
        SERVER,
        reader.id,
        &UpdateDatabaseUser { password: None, database_ids: Some(vec![other.id]) },
    )
    .await
    .unwrap();
    let grants = mariadb.query("SHOW GRANTS FOR 'pr_42_ro'@'%'").unwrap();
    assert!(grants.iter().flatten().any(|g| g.contains("`pr_42_cache`")), "{grants:?}");
    assert!(!grants.iter().flatten().any(|g| g.contains("`pr_42_app`")), "{grants:?}");

    api.delete_database_user(SERVER, reader.id).await.unwrap();
    let pr42 = switchyard::forge::ensure::find_database_user(&api, SERVER, "pr_42").await.unwrap().unwrap();
    api.delete_database_user(SERVER, pr42.id).await.unwrap();
    api.delete_database(SERVER, db.id).await.unwrap();
    api.delete_database(SERVER, other.id).await.unwrap();
    assert!(!exists_db("pr_42_app"));
    assert!(!exists_db("pr_42_cache"));
    assert!(!exists_user("pr_42"));
    assert!(!exists_user("pr_42_ro"));
    wait_until(async || api.list_databases(SERVER, None).await, Vec::is_empty, fast_poll()).await.unwrap();
}
