//! Let's Encrypt certificates of a domain: requesting one, looking it up, the active one
//! and deletion.

use super::{ApiError, OpResult, World, validated};
use crate::forge::lifecycle;
use crate::forge::validation::{self as v, Input};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Certificate {
    pub id: u64,
    pub site_id: u64,
    pub domain_id: u64,
    pub cert_type: String,
    pub verification_method: Option<String>,
    pub key_type: Option<String>,
    pub preferred_chain: Option<String>,
    pub fails: bool,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl World {
    #[allow(clippy::too_many_arguments)] // the nesting ids are the API's, not a design choice
    pub fn request_certificate(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        domain_id: u64,
        body: &Map<String, Value>,
        fails: bool,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        self.domain(org, server_id, site_id, domain_id)?;
        let mut input = Input::new(body);
        let cert_type = input.one_of("type", true, v::CERTIFICATE_TYPES);
        input.boolean("enable", false);
        let le = input.object("letsencrypt").cloned().unwrap_or_default();
        let mut le_input = Input::new(&le);
        let verification = le_input.one_of("verification_method", false, &["http-01", "dns-01"]);
        let key_type = le_input.one_of("key_type", false, &["ecdsa", "rsa"]);
        let chain = le_input.one_of("preferred_chain", false, &["ISRG Root X1"]);
        for (field, messages) in le_input.into_errors() {
            for m in messages {
                input.error(&format!("letsencrypt.{field}"), m);
            }
        }
        if cert_type.as_deref().is_some_and(|t| t != "letsencrypt") {
            input.error("type", "Only letsencrypt certificates are supported by the simulator.");
        }
        validated(input)?;
        let id = self.alloc();
        self.certificates.insert(
            id,
            Certificate {
                id,
                site_id,
                domain_id,
                cert_type: cert_type.unwrap_or_default(),
                verification_method: verification.or(Some("http-01".into())),
                key_type: key_type.or(Some("ecdsa".into())),
                preferred_chain: chain,
                fails,
                created_at: now,
                deleted_at: None,
            },
        );
        Ok(id)
    }

    pub fn certificate(
        &self,
        org: &str,
        server_id: u64,
        site_id: u64,
        domain_id: Option<u64>,
        cert_id: u64,
    ) -> OpResult<&Certificate> {
        self.site(org, Some(server_id), site_id)?;
        self.certificates
            .get(&cert_id)
            .filter(|c| c.site_id == site_id && domain_id.is_none_or(|d| d == c.domain_id))
            .ok_or_else(|| ApiError::missing("Certificate", cert_id))
    }

    /// The newest installed, non-deleted certificate of a domain is the active one.
    pub fn active_certificate(&self, domain_id: u64, now: DateTime<Utc>, delay: Duration) -> Option<&Certificate> {
        self.certificates
            .values()
            .rev()
            .filter(|c| c.domain_id == domain_id)
            .find(|c| lifecycle::certificate_view(c.created_at, c.fails, c.deleted_at, now, delay).installed)
    }

    pub fn delete_certificate(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        domain_id: Option<u64>,
        cert_id: u64,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.certificate(org, server_id, site_id, domain_id, cert_id)?;
        if let Some(c) = self.certificates.get_mut(&cert_id) {
            c.deleted_at.get_or_insert(now);
        }
        Ok(())
    }
}
