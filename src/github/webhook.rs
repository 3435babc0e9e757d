//! `POST /webhooks/github`: verify the signature, skip replays, classify the delivery,
//! act on it. Every outcome is logged with its reason and counted in
//! `switchyard_github_events_total`.
//!
//! Answers: 401 for a missing or wrong signature, 400 for a delivery without event
//! headers or with a malformed payload, 503 before the CRDs are established or when the
//! webhook secret cannot be read, 502 when GitHub or the apiserver failed (the delivery
//! can then be redelivered from GitHub's UI), 200 with `{"result", "reason"}` otherwise,
//! including for ignored and refused deliveries.
//!
//! The module owns its route ([`router`]); the operator's HTTP server merges it and
//! hands it a [`WebhookState`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tracing::{error, info, warn};

use super::{Github, environments};
use crate::logic::github_webhook::{DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, classify, verify_signature};
use crate::logic::pull_request_actions::Decision;

/// GitHub's largest payload (25 MB); the route accepts bodies up to this size.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// What the webhook handler reads.
pub struct WebhookState {
    /// The GitHub integration, when configured (404 otherwise).
    pub github: Option<Arc<Github>>,
    /// Set once the CRDs are Established (503 until then); shared with `/readyz`.
    pub ready: Arc<AtomicBool>,
}

/// `POST /webhooks/github`, accepting bodies up to [`MAX_BODY`].
pub fn router(state: Arc<WebhookState>) -> Router {
    Router::new().route("/webhooks/github", post(receive).layer(DefaultBodyLimit::max(MAX_BODY))).with_state(state)
}

fn answer(status: StatusCode, delivery: &str, result: &str, reason: &str) -> Response {
    (status, axum::Json(json!({"delivery": delivery, "result": result, "reason": reason}))).into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The handler of `POST /webhooks/github`.
pub async fn receive(State(state): State<Arc<WebhookState>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(gh) = state.github.clone() else {
        return (StatusCode::NOT_FOUND, "GitHub integration is not configured").into_response();
    };
    if !state.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "waiting for CRDs to be Established").into_response();
    }
    let delivery = header(&headers, DELIVERY_HEADER).unwrap_or_default().to_string();
    let event = header(&headers, EVENT_HEADER).unwrap_or_default().to_string();
    process(&gh, &headers, &delivery, &event, &body).await
}

async fn process(gh: &Github, headers: &HeaderMap, delivery: &str, event: &str, body: &[u8]) -> Response {
    let secret = match gh.webhook_secret().await {
        Ok(s) => s,
        Err(e) => {
            error!(delivery, event, error = %e, "cannot verify a GitHub delivery: webhook secret unavailable");
            gh.count("webhook", "unverified", "failed", e.label());
            return answer(StatusCode::SERVICE_UNAVAILABLE, delivery, "failed", e.label());
        }
    };
    // Nothing but the signature check happens before the signature is known to be good.
    if let Err(e) = verify_signature(&secret, body, header(headers, SIGNATURE_HEADER)) {
        // The event header is not trusted yet: it does not become a metric label.
        return rejected(gh, StatusCode::UNAUTHORIZED, delivery, event, "unverified", e.reason(), &e);
    }
    if event.is_empty() || delivery.is_empty() {
        let missing = "no X-GitHub-Event or X-GitHub-Delivery header";
        return rejected(gh, StatusCode::BAD_REQUEST, delivery, event, event, "MissingHeaders", &missing);
    }
    let delivery_key = format!("delivery:{delivery}");
    let classified = match classify(event, body) {
        Ok(c) => c,
        Err(e) => return rejected(gh, StatusCode::BAD_REQUEST, delivery, event, event, "MalformedPayload", &e),
    };
    let pr_event = match classified {
        Ok(e) => e,
        Err(ignored) => {
            if !gh.record_delivery(std::slice::from_ref(&delivery_key)) {
                return duplicate(gh, delivery, event);
            }
            info!(delivery, event, result = "ignored", reason = ignored.reason(), message = %ignored, "GitHub delivery ignored");
            gh.count("webhook", event, "ignored", ignored.reason());
            return answer(StatusCode::OK, delivery, "ignored", ignored.reason());
        }
    };
    let repository = pr_event.repository.as_str();
    let number = pr_event.number;
    let trigger = pr_event.trigger.name();
    let Some(template) = gh.config.template(repository) else {
        info!(
            delivery,
            event,
            repository,
            pull_request = number,
            result = "ignored",
            reason = "RepositoryNotConfigured",
            "GitHub delivery ignored: the repository has no entry in github.repositories"
        );
        gh.count("webhook", event, "ignored", "RepositoryNotConfigured");
        return answer(StatusCode::OK, delivery, "ignored", "RepositoryNotConfigured");
    };
    let mut keys = vec![delivery_key];
    keys.extend(pr_event.replay_keys());
    if !gh.record_delivery(&keys) {
        return duplicate(gh, delivery, event);
    }
    match environments::handle(gh, &pr_event, template, None).await {
        Ok(handled) => {
            let reason = handled.decision.label();
            let (namespace, name) = (handled.namespace.as_str(), handled.name.as_str());
            match &handled.decision {
                Decision::Reject(rejection) => {
                    warn!(delivery, event, trigger, repository, pull_request = number, namespace, environment = name,
                        result = "rejected", reason, message = %rejection, "GitHub delivery rejected");
                    gh.count("webhook", event, "rejected", reason);
                    answer(StatusCode::OK, delivery, "rejected", reason)
                }
                decision => {
                    let result = if matches!(decision, Decision::Nothing(_)) { "ignored" } else { "accepted" };
                    info!(
                        delivery,
                        event,
                        trigger,
                        repository,
                        pull_request = number,
                        namespace,
                        environment = name,
                        result,
                        reason,
                        "GitHub delivery handled"
                    );
                    gh.count("webhook", event, result, reason);
                    answer(StatusCode::OK, delivery, result, reason)
                }
            }
        }
        Err(e) => {
            // Not acted on: a redelivery of this delivery must be.
            gh.forget_delivery(&keys);
            error!(delivery, event, trigger, repository, pull_request = number, result = "failed", reason = e.label(),
                error = %e, "GitHub delivery failed");
            gh.count("webhook", event, "failed", e.label());
            answer(StatusCode::BAD_GATEWAY, delivery, "failed", e.label())
        }
    }
}

/// Logs, counts and answers a delivery refused before it reached a decision.
fn rejected(
    gh: &Github,
    status: StatusCode,
    delivery: &str,
    event: &str,
    metric_event: &str,
    reason: &str,
    message: &dyn std::fmt::Display,
) -> Response {
    warn!(delivery, event, result = "rejected", reason, message = %message, "GitHub delivery rejected");
    gh.count("webhook", metric_event, "rejected", reason);
    answer(status, delivery, "rejected", reason)
}

fn duplicate(gh: &Github, delivery: &str, event: &str) -> Response {
    rejected(gh, StatusCode::OK, delivery, event, event, "DuplicateDelivery", &"already handled")
}
