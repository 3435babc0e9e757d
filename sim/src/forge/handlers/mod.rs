//! One handler per Forge operation. Each locks the world once, applies one model
//! operation, renders the result; MariaDB side effects happen outside the lock.
//!
//! This module holds the route table; the handlers live in one submodule per entity,
//! next to the `lists` helpers they share.

mod account;
mod background_processes;
mod certificates;
mod commands;
mod databases;
mod deployments;
mod domains;
mod lists;
mod scheduled_jobs;
mod servers;
mod sites;

use account::{current_user, get_org, list_orgs};
use background_processes::{
    create_process, delete_process, get_process, list_processes, process_action, process_log, update_process,
};
use certificates::{
    active_certificate, certificate_action, delete_certificate, get_certificate, list_domain_certificates,
    list_site_certificates, request_certificate,
};
use commands::{command_output, delete_command, get_command, list_commands, run_command};
use databases::{
    create_database, create_database_user, delete_database, delete_database_user, get_database, get_database_user,
    list_database_users, list_databases, sync_databases, update_database_user,
};
use deployments::{
    deployment_log, deployment_status, get_deploy_hook, get_deployment, get_script, list_deployments,
    push_to_deploy_off, push_to_deploy_on, put_script, regenerate_deploy_hook, reset_deployment_status,
    trigger_deployment,
};
use domains::{create_domain, delete_domain, domain_action, get_domain, list_domains, update_domain};
use scheduled_jobs::{create_job, delete_job, get_job, job_output, list_jobs};
use servers::{get_server, list_servers, update_server};
use sites::{
    create_site, delete_site, get_environment, get_site, list_sites_org, list_sites_server, list_sites_token,
    put_environment, update_site,
};

use super::Sim;
use axum::Router;
use axum::routing::{get, post};

const SITE: &str = "/api/orgs/{org}/servers/{server}/sites/{site}";
const SERVER: &str = "/api/orgs/{org}/servers/{server}";

pub fn routes() -> Router<Sim> {
    let s = |suffix: &str| format!("{SITE}{suffix}");
    let srv = |suffix: &str| format!("{SERVER}{suffix}");
    Router::new()
        .route("/api/me", get(current_user))
        .route("/api/user", get(current_user))
        .route("/api/orgs", get(list_orgs))
        .route("/api/orgs/{org}", get(get_org))
        .route("/api/orgs/{org}/servers", get(list_servers))
        .route(SERVER, get(get_server).put(update_server))
        .route("/api/sites", get(list_sites_token))
        .route("/api/orgs/{org}/sites", get(list_sites_org))
        .route("/api/orgs/{org}/sites/{site}", get(get_site))
        .route(&srv("/sites"), get(list_sites_server).post(create_site))
        .route(SITE, axum::routing::put(update_site).delete(delete_site))
        .route(&s("/environment"), get(get_environment).put(put_environment))
        .route(&s("/deployments"), get(list_deployments).post(trigger_deployment))
        .route(&s("/deployments/status"), get(deployment_status).delete(reset_deployment_status))
        .route(&s("/deployments/script"), get(get_script).put(put_script))
        .route(&s("/deployments/push-to-deploy"), post(push_to_deploy_on).delete(push_to_deploy_off))
        .route(&s("/deployments/deploy-hook"), get(get_deploy_hook).put(regenerate_deploy_hook))
        .route(&s("/deployments/{deployment}"), get(get_deployment))
        .route(&s("/deployments/{deployment}/log"), get(deployment_log))
        .route(&s("/domains"), get(list_domains).post(create_domain))
        .route(&s("/domains/{domain}"), get(get_domain).patch(update_domain).delete(delete_domain))
        .route(&s("/domains/{domain}/actions"), post(domain_action))
        .route(&s("/domains/{domain}/certificates"), get(list_domain_certificates).post(request_certificate))
        .route(&s("/domains/{domain}/certificates/active"), get(active_certificate))
        .route(&s("/domains/{domain}/certificate"), get(active_certificate))
        .route(&s("/domains/{domain}/certificates/{certificate}"), get(get_certificate).delete(delete_certificate))
        .route(&s("/domains/{domain}/certificates/{certificate}/actions"), post(certificate_action))
        .route(&s("/certificates"), get(list_site_certificates))
        .route(&s("/commands"), get(list_commands).post(run_command))
        .route(&s("/commands/{command}"), get(get_command).delete(delete_command))
        .route(&s("/commands/{command}/output"), get(command_output))
        .route(&s("/scheduled-jobs"), get(list_jobs).post(create_job))
        .route(&s("/scheduled-jobs/{job}"), get(get_job).delete(delete_job))
        .route(&s("/scheduled-jobs/{job}/output"), get(job_output))
        .route(&srv("/scheduled-jobs"), get(list_jobs).post(create_job))
        .route(&srv("/scheduled-jobs/{job}"), get(get_job).delete(delete_job))
        .route(&srv("/scheduled-jobs/{job}/output"), get(job_output))
        .route(&srv("/database/schemas"), get(list_databases).post(create_database))
        .route(&srv("/database/schemas/synchronizations"), post(sync_databases))
        .route(&srv("/database/schemas/{database}"), get(get_database).delete(delete_database))
        .route(&srv("/database/users"), get(list_database_users).post(create_database_user))
        .route(
            &srv("/database/users/{user}"),
            get(get_database_user).put(update_database_user).delete(delete_database_user),
        )
        .route(&srv("/background-processes"), get(list_processes).post(create_process))
        .route(&srv("/background-processes/{process}"), get(get_process).put(update_process).delete(delete_process))
        .route(&srv("/background-processes/{process}/actions"), post(process_action))
        .route(&srv("/background-processes/{process}/log"), get(process_log))
}
