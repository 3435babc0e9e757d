//! The parent's organization pushed to this instance (`sync-organization`, speaking as
//! the parent), and this Master's license checked with its parent (`validate-license`,
//! speaking as itself) on a schedule.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::registration::Parent;
use super::{BranchContext, Update, lock};
use crate::api::branch::{BranchType, OrganizationRef, OrganizationSourceKind, OrganizationSync};
use crate::api::conditions::{self, Status};
use crate::backends::instance::{Call, InstanceClient};
use crate::controller::kit::k8s::ignore_not_found;
use crate::controller::{Error, publish};
use crate::logic::duration;
use crate::logic::organization::{self, LICENSE_PATH, LicenseVerdict, Organization, SYNC_PATH};

/// The parent's organization was pushed to this instance.
pub const ORGANIZATION_SYNCED: &str = "OrganizationSynced";
/// The parent calls this Master's license valid.
pub const LICENSE_VALID: &str = "LicenseValid";
const DEFAULT_LICENSE_INTERVAL: Duration = Duration::from_secs(3600);

/// Failed pushes in a row and when the last one was tried.
pub(super) struct Backoff {
    failures: u32,
    last: Instant,
}

/// When the license was last checked, and which one.
pub(super) struct Checked {
    digest: String,
    at: Instant,
}

fn describe(r: &OrganizationRef) -> String {
    match r.kind {
        OrganizationSourceKind::ConfigMap => format!("ConfigMap {}", r.name),
        OrganizationSourceKind::Secret => format!("Secret {}", r.name),
    }
}

/// The parent's organization, if it names one: the body, or why there is none.
pub(super) async fn load(
    bctx: &BranchContext,
    parent: Option<&Parent>,
) -> Result<Option<Result<Organization, (&'static str, String)>>, Error> {
    let Some(parent) = parent else { return Ok(None) };
    let Some(source) = &parent.branch.spec.organization_ref else { return Ok(None) };
    let namespace = parent.branch.namespace().unwrap_or_default();
    let client = bctx.ctx.client.clone();
    let data: Option<BTreeMap<String, String>> = match source.kind {
        OrganizationSourceKind::ConfigMap => {
            let found = ignore_not_found(Api::<ConfigMap>::namespaced(client, &namespace).get(&source.name).await)?;
            found.map(|cm| cm.data.unwrap_or_default())
        }
        OrganizationSourceKind::Secret => {
            let found = ignore_not_found(Api::<Secret>::namespaced(client, &namespace).get(&source.name).await)?;
            found.map(|s| {
                let data = s.data.unwrap_or_default().into_iter();
                // A key that is not text is left out, and reported as missing.
                data.filter_map(|(k, v)| String::from_utf8(v.0).ok().map(|v| (k, v))).collect()
            })
        }
    };
    let what = format!("{} of parent {}", describe(source), parent.branch.name_any());
    Ok(Some(match data {
        None => Err(("OrganizationSourceMissing", format!("{what} does not exist (yet)"))),
        Some(data) => organization::from_source(&data).map_err(|p| ("OrganizationInvalid", format!("{what}: {p}"))),
    }))
}

/// Pushes the parent's organization when this instance has not got this digest yet,
/// backing off after failures. Without a parent organization the condition is absent.
pub(super) async fn sync(
    update: &mut Update<'_>,
    bctx: &BranchContext,
    own: &InstanceClient,
    parent: Option<&Parent>,
    org: Option<&Result<Organization, (&'static str, String)>>,
    timeout: Duration,
) {
    let branch = update.branch;
    let oref = ObjectRef::from_obj(branch);
    let (Some(parent), Some(org)) = (parent, org) else {
        update.status.conditions.retain(|c| c.type_ != ORGANIZATION_SYNCED);
        update.status.organization_sync = None;
        lock(&bctx.sync_backoff).remove(&oref);
        return;
    };
    let org = match org {
        Ok(org) => org,
        Err((reason, message)) => return update.condition(ORGANIZATION_SYNCED, Status::False, reason, message.clone()),
    };
    let synced = update.status.organization_sync.as_ref().is_some_and(|s| s.digest == org.digest);
    if synced && conditions::is_true(&update.status.conditions, ORGANIZATION_SYNCED) {
        return;
    }
    if let Some(b) = lock(&bctx.sync_backoff).get(&oref)
        && b.last.elapsed() < organization::backoff(b.failures)
    {
        return;
    }
    let source = parent.branch.spec.organization_ref.as_ref().map(describe).unwrap_or_default();
    let parent_name = parent.branch.name_any();
    let call = Call { base_url: &branch.spec.url, key: &parent.key, origin: &parent_name, timeout };
    match own.post(&call, SYNC_PATH, &org.body).await {
        Ok(_) => {
            lock(&bctx.sync_backoff).remove(&oref);
            update.status.organization_sync =
                Some(OrganizationSync { digest: org.digest.clone(), synced_at: Time(Timestamp::now()) });
            let message = format!("{source} of parent {parent_name} synced ({} users)", org.users);
            update.condition(ORGANIZATION_SYNCED, Status::True, "Synced", message.clone());
            publish(&bctx.ctx, branch, EventType::Normal, "OrganizationSynced", "Sync", message).await;
        }
        Err(refused) => {
            let failures = {
                let mut backoff = lock(&bctx.sync_backoff);
                let entry = backoff.entry(oref).or_insert(Backoff { failures: 0, last: Instant::now() });
                entry.failures += 1;
                entry.last = Instant::now();
                entry.failures
            };
            let wait = organization::backoff(failures);
            let message = format!(
                "pushing {source} of parent {parent_name} failed {failures} time(s) in a row: {}; next attempt in {}s or later",
                refused.message,
                wait.as_secs()
            );
            update.condition(ORGANIZATION_SYNCED, Status::False, "SyncFailed", message.clone());
            if failures == 1 {
                publish(&bctx.ctx, branch, EventType::Warning, "OrganizationSyncFailed", "Sync", message).await;
            }
        }
    }
}

/// A Master checks the license of its parent's organization with the parent, speaking
/// as itself, when the license changed or `licenseCheckInterval` passed.
pub(super) async fn check_license(
    update: &mut Update<'_>,
    bctx: &BranchContext,
    parent: Option<&Parent>,
    org: Option<&Result<Organization, (&'static str, String)>>,
    key: &str,
    timeout: Duration,
) {
    let branch = update.branch;
    let oref = ObjectRef::from_obj(branch);
    let (BranchType::Master, Some(parent), Some(org)) = (branch.spec.type_, parent, org) else {
        update.status.conditions.retain(|c| c.type_ != LICENSE_VALID);
        update.status.license_checked_at = None;
        lock(&bctx.license_checks).remove(&oref);
        return;
    };
    let org = match org {
        Ok(org) => org,
        Err((_, message)) => {
            let message = format!("no license to check: {message}");
            return update.condition(LICENSE_VALID, Status::Unknown, "NoLicense", message);
        }
    };
    let interval = duration::parse(&branch.spec.license_check_interval).unwrap_or(DEFAULT_LICENSE_INTERVAL);
    let due =
        lock(&bctx.license_checks).get(&oref).is_none_or(|c| c.digest != org.digest || c.at.elapsed() >= interval);
    if !due && conditions::get(&update.status.conditions, LICENSE_VALID).is_some() {
        return;
    }
    let name = branch.name_any();
    let call = Call { base_url: &parent.branch.spec.url, key, origin: &name, timeout };
    let body = json!({"license": org.license(), "branch_name": name});
    let was_true = conditions::is_true(&update.status.conditions, LICENSE_VALID);
    match parent.client.post(&call, LICENSE_PATH, &body).await {
        Ok(answer) => {
            lock(&bctx.license_checks).insert(oref, Checked { digest: org.digest.clone(), at: Instant::now() });
            update.status.license_checked_at = Some(Time(Timestamp::now()));
            let parent_name = parent.branch.name_any();
            match organization::license_verdict(&answer) {
                LicenseVerdict::Valid => {
                    let message = format!("parent {parent_name} calls the license valid");
                    update.condition(LICENSE_VALID, Status::True, "LicenseValid", message);
                }
                LicenseVerdict::Invalid(why) => {
                    let message = format!("parent {parent_name} calls the license invalid: {why}");
                    let first = was_true
                        || conditions::get(&update.status.conditions, LICENSE_VALID)
                            .is_none_or(|c| c.reason != "LicenseInvalid");
                    update.condition(LICENSE_VALID, Status::False, "LicenseInvalid", message.clone());
                    if first {
                        publish(&bctx.ctx, branch, EventType::Warning, "LicenseInvalid", "ValidateLicense", message)
                            .await;
                    }
                }
            }
        }
        Err(refused) => {
            let message = format!("validate-license with parent {}: {}", parent.branch.name_any(), refused.message);
            update.condition(LICENSE_VALID, Status::Unknown, "LicenseCheckFailed", message);
        }
    }
}
