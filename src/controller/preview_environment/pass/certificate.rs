//! The certificate step: the domain record and its Let's Encrypt certificate; a
//! failed one is requested again with backoff (`logic::preview::certificate_action`).

use std::time::Duration;

use super::{Pass, elapsed_since, going_away};
use crate::api::conditions;
use crate::controller::{Error, kit};
use crate::forge::ensure;
use crate::forge::{CreateDomain, RequestCertificate};
use crate::logic::preview::status::{Outcome, Reason, StepCondition};
use crate::logic::preview::{CertificateAction, ObservedCertificate, RecordedCertificate, certificate_action};

impl Pass<'_> {
    pub(super) async fn certificate(&mut self) -> Result<Outcome, Error> {
        let active = || Outcome::Done("Let's Encrypt certificate is active".into());
        if !self.env.spec.tls.lets_encrypt {
            self.status.certificate_id = None;
            self.status.certificate_failures = None;
            return Ok(Outcome::Done("TLS is disabled".into()));
        }
        if self.settled(StepCondition::CertificateReady) && self.status.certificate_id.is_some() {
            return Ok(active());
        }
        let (forge, server, site) = (self.forge(), self.server(), self.site_id());
        let name = self.names().domain.clone();
        let domains = forge.list_domains(server, site).await?;
        let domain = match domains.into_iter().find(|d| d.name == name && !going_away(&d.status)) {
            Some(d) => d,
            None => {
                let req = CreateDomain {
                    name: name.clone(),
                    allow_wildcard_subdomains: false,
                    www_redirect_type: "none".into(),
                };
                ensure::ensure_domain(forge, server, site, &req, self.opts).await?.value
            }
        };
        self.status.domain_id = Some(domain.id as i64);
        let certificates = forge.list_certificates(server, site, Some(domain.id)).await?;
        let current = certificates.into_iter().filter(|c| !going_away(&c.status)).max_by_key(|c| c.id);
        let observed = current.as_ref().map(|c| ObservedCertificate {
            id: c.id,
            status: c.status.clone(),
            active: c.is_active(),
            failed: c.is_failed(),
        });
        let failed_condition = conditions::get(&self.status.conditions, StepCondition::CertificateReady.as_str())
            .filter(|k| k.reason == Reason::CertificateFailed.as_str());
        let recorded = RecordedCertificate {
            id: self.status.certificate_id.map(|id| id as u64),
            failed: failed_condition.is_some(),
            failures: self.status.certificate_failures.unwrap_or(0).max(0) as u32,
            failed_for: failed_condition.map_or(Duration::ZERO, |k| elapsed_since(k.last_transition_time.0)),
        };
        if let Some(c) = &current {
            self.status.certificate_id = Some(c.id as i64);
        }
        match certificate_action(observed.as_ref(), &recorded) {
            CertificateAction::Active => {
                self.status.certificate_failures = None;
                Ok(active())
            }
            CertificateAction::Issuing { status } => {
                Ok(Outcome::waiting(Reason::CertificateIssuing, format!("certificate for {name} is {status}")))
            }
            CertificateAction::Request => {
                let new =
                    forge.request_certificate(server, site, domain.id, &RequestCertificate::letsencrypt()).await?;
                self.status.certificate_id = Some(new.id as i64);
                Ok(Outcome::waiting(Reason::CertificateIssuing, format!("requested a certificate for {name}")))
            }
            CertificateAction::Wait { failures, retry_in } => {
                self.status.certificate_failures = Some(failures as i32);
                self.poll_in(retry_in.max(Duration::from_secs(1)));
                let message = format!(
                    "Let's Encrypt failed for {name} (is DNS pointing at the server?); retrying in {}s",
                    retry_in.as_secs()
                );
                Ok(Outcome::waiting(Reason::CertificateFailed, message))
            }
            CertificateAction::Retry { failures } => {
                self.status.certificate_failures = Some(failures as i32);
                if let Some(c) = &current {
                    kit::forge_gone(forge.delete_certificate(server, site, domain.id, c.id).await)?;
                }
                let new =
                    forge.request_certificate(server, site, domain.id, &RequestCertificate::letsencrypt()).await?;
                self.status.certificate_id = Some(new.id as i64);
                let message = format!("retrying Let's Encrypt for {name} (attempt {})", failures + 1);
                Ok(Outcome::waiting(Reason::CertificateIssuing, message))
            }
        }
    }
}
