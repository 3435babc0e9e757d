//! Registration in the design's registries: this Branch with its parent, and its
//! overseer (the parent, or itself without one) with its own instance, each confirmed
//! when the name is already taken.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::events::EventType;

use super::{BranchContext, Update};
use crate::api::branch::Branch;
use crate::api::conditions::{self, Status};
use crate::backends::instance::{Call, InstanceClient, is_bearer_token};
use crate::controller::{Error, publish};
use crate::logic::health::RegistrationState;
use crate::logic::registration::{self, Answer, Payload, Registration, branch_type, same_url};

/// The Branch is registered with its parent and its overseer with it.
pub const REGISTERED: &str = "Registered";

/// The parent a Branch speaks with: its object, key and client.
pub(super) struct Parent {
    pub branch: Arc<Branch>,
    pub key: String,
    pub client: InstanceClient,
}

/// Who the operator speaks as toward a Branch's own instance: name and key.
pub(super) fn overseer<'a>(branch: &'a Branch, parent: Option<&'a Parent>, key: &'a str) -> (String, &'a str) {
    match parent {
        Some(p) => (p.branch.name_any(), p.key.as_str()),
        None => (branch.name_any(), key),
    }
}

/// The usable parent of `branch`: `Ok(None)` without a parent ref, `Err` with a reason
/// when the parent cannot be spoken with (yet). No request is sent to a parent whose URL
/// the operator config does not allow.
pub(super) async fn parent(
    bctx: &BranchContext,
    branch: &Branch,
) -> Result<Result<Option<Parent>, (&'static str, String)>, Error> {
    let Some(parent_ref) = &branch.spec.parent_ref else { return Ok(Ok(None)) };
    let namespace = branch.namespace().unwrap_or_default();
    let Some(parent) = bctx.branch(&namespace, &parent_ref.name) else {
        return Ok(Err(("ParentNotFound", format!("parent Branch {} does not exist (yet)", parent_ref.name))));
    };
    if !parent.spec.accepted {
        return Ok(Err(("ParentNotAccepted", format!("parent Branch {} is not accepted", parent_ref.name))));
    }
    let policy = &bctx.ctx.config.branches;
    if let Err(v) = policy.check(&parent.spec.url).and(policy.check_insecure(parent.spec.tls.insecure_skip_verify)) {
        return Ok(Err(("ParentNotAllowed", format!("parent Branch {}: {}", parent_ref.name, v.message))));
    }
    let key = match bctx.secret_value(&namespace, &parent.spec.credentials_secret_ref).await? {
        Ok(k) if is_bearer_token(&k) => k,
        Ok(_) => {
            let message = format!("credentials of parent {} are not a bearer token", parent_ref.name);
            return Ok(Err(("ParentCredentialsMissing", message)));
        }
        Err(missing) => {
            let message = format!("credentials of parent {}: {}", parent_ref.name, missing.message());
            return Ok(Err(("ParentCredentialsMissing", message)));
        }
    };
    let client = match bctx.client_for(&parent).await? {
        Ok(c) => c,
        Err((_, message)) => return Ok(Err(("ParentTLSInvalid", message))),
    };
    Ok(Ok(Some(Parent { branch: parent, key, client })))
}

fn payload(branch: &Branch, key: &str) -> Payload {
    Payload {
        branch_name: branch.name_any(),
        branch_url: branch.spec.url.clone(),
        branch_type: branch_type(branch.spec.type_),
        api_key: key.to_string(),
    }
}

/// One registration to make, with the client and health path of where it goes.
struct Step<'a> {
    registration: Registration,
    client: &'a InstanceClient,
    health_path: &'a str,
}

/// Why a registration did not go through.
enum Problem {
    /// The name is taken by another URL or key: a person must sort it out.
    Conflict(String),
    /// Anything else; retried.
    Failed(String),
}

/// Registers what is missing and records the outcome in `Registered`. With an unusable
/// parent only the Branch itself is registered with its own instance (so probes can
/// speak as it), and registration stays pending with the parent's reason.
pub(super) async fn ensure(
    update: &mut Update<'_>,
    bctx: &BranchContext,
    own: &InstanceClient,
    parent: &Result<Option<Parent>, (&'static str, String)>,
    key: &str,
    timeout: Duration,
) -> Result<RegistrationState, Error> {
    let branch = update.branch;
    let own_step = |payload: Payload| Step {
        registration: Registration { at: branch.spec.url.clone(), payload },
        client: own,
        health_path: &branch.spec.health_check.path,
    };
    let steps: Vec<Step<'_>> = match parent {
        Ok(Some(p)) => vec![
            Step {
                registration: Registration { at: p.branch.spec.url.clone(), payload: payload(branch, key) },
                client: &p.client,
                health_path: &p.branch.spec.health_check.path,
            },
            own_step(payload(&p.branch, &p.key)),
        ],
        Ok(None) | Err(_) => vec![own_step(payload(branch, key))],
    };
    let hash = registration::hash(&steps.iter().map(|s| s.registration.clone()).collect::<Vec<_>>());
    if let Err((reason, message)) = parent {
        // Best effort, so the instance can be probed meanwhile; the outcome shows once the parent is usable.
        for step in &steps {
            let _ = register(step, timeout).await;
        }
        return Ok(pending(update, reason, message.clone()));
    }
    if update.status.registration_hash.as_deref() == Some(hash.as_str())
        && conditions::is_true(&update.status.conditions, REGISTERED)
    {
        return Ok(RegistrationState::Registered);
    }
    let mut created = false;
    for step in &steps {
        match register(step, timeout).await {
            Ok(new) => created |= new,
            Err(problem) => {
                let (reason, message) = match problem {
                    Problem::Conflict(m) => ("RegistrationConflict", m),
                    Problem::Failed(m) => ("RegistrationFailed", m),
                };
                let first = conditions::get(&update.status.conditions, REGISTERED).is_none_or(|c| c.reason != reason);
                if first {
                    publish(&bctx.ctx, branch, EventType::Warning, reason, "Register", message.clone()).await;
                }
                return Ok(pending(update, reason, message));
            }
        }
    }
    let again = update.status.registration_hash.is_some();
    update.status.registration_hash = Some(hash);
    update.status.registered_at = Some(Time(Timestamp::now()));
    let message = match parent {
        Ok(Some(p)) => format!(
            "registered with parent {} ({}), and the parent with this instance",
            p.branch.name_any(),
            p.branch.spec.url
        ),
        _ => "registered with its own instance (a Branch without a parent is its own overseer)".to_string(),
    };
    update.condition(REGISTERED, Status::True, "Registered", message.clone());
    if created || again {
        let note = if again { format!("{message}, after a change") } else { message };
        publish(&bctx.ctx, branch, EventType::Normal, "Registered", "Register", note).await;
    }
    Ok(RegistrationState::Registered)
}

fn pending(update: &mut Update<'_>, reason: &str, message: String) -> RegistrationState {
    update.condition(REGISTERED, Status::False, reason, message.clone());
    RegistrationState::Pending { reason: reason.into(), message }
}

/// Whether a refused health call says the instance's registry does not hold the caller
/// with its key (the middleware's 401/403).
pub(super) fn lost(message: &str) -> bool {
    message.contains("HTTP 401") || message.contains("HTTP 403")
}

/// One registration: `Ok(true)` when made now, `Ok(false)` when the name was taken and
/// the instance accepts this payload's name and key (it is registered already).
async fn register(step: &Step<'_>, timeout: Duration) -> Result<bool, Problem> {
    let Registration { at, payload } = &step.registration;
    let name = &payload.branch_name;
    match step.client.register(at, payload, timeout).await {
        Err(e) => Err(Problem::Failed(e.message)),
        Ok(Answer::Created) => Ok(true),
        Ok(Answer::Refused { status, message }) => {
            Err(Problem::Failed(format!("registering {name} with {at}: HTTP {status}: {message}")))
        }
        Ok(Answer::Taken { stored_url: Some(stored) }) if !same_url(&stored, &payload.branch_url) => {
            Err(Problem::Conflict(format!(
                "{at} already has a branch named {name} registered with URL {stored}, not {}; \
                 rename this Branch or remove that registration on the instance",
                payload.branch_url
            )))
        }
        Ok(Answer::Taken { .. }) => {
            // Taken with our URL (or none reported): registered already if the instance
            // accepts this name with this key.
            let call = Call { base_url: at, key: &payload.api_key, origin: name, timeout };
            match step.client.health(&call, step.health_path).await {
                Ok(_) => Ok(false),
                Err(u) if lost(&u.message) => Err(Problem::Conflict(format!(
                    "{at} already has a branch named {name}, but does not accept its current key ({}); \
                         the design cannot update a registration: remove it on the instance and it is registered again",
                    u.message
                ))),
                Err(u) => {
                    Err(Problem::Failed(format!("confirming the registration of {name} with {at}: {}", u.message)))
                }
            }
        }
    }
}
