//! Domains of a site: create, update, delete and the `enable`/`disable`/`mark-as-primary`
//! actions.

use super::{ApiError, OpResult, World, validated};
use crate::forge::validation::{self as v, Input};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Domain {
    pub id: u64,
    pub site_id: u64,
    pub name: String,
    pub primary: bool,
    pub www_redirect_type: String,
    pub allow_wildcard_subdomains: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl World {
    pub fn create_domain(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        self.site(org, Some(server_id), site_id)?;
        let mut input = Input::new(body);
        let name = input.string_max("name", true, 253);
        let wildcard = input.boolean("allow_wildcard_subdomains", true);
        let www = input.one_of("www_redirect_type", true, v::WWW_REDIRECT_TYPES);
        if let Some(n) = &name
            && self.domains.values().any(|d| d.site_id == site_id && &d.name == n)
        {
            v::taken(&mut input, "name");
        }
        validated(input)?;
        let id = self.alloc();
        self.domains.insert(
            id,
            Domain {
                id,
                site_id,
                name: name.unwrap_or_default(),
                primary: false,
                www_redirect_type: www.unwrap_or_default(),
                allow_wildcard_subdomains: wildcard.unwrap_or(false),
                created_at: now,
                updated_at: now,
                deleted_at: None,
            },
        );
        Ok(id)
    }

    pub fn domain(&self, org: &str, server_id: u64, site_id: u64, domain_id: u64) -> OpResult<&Domain> {
        self.site(org, Some(server_id), site_id)?;
        self.domains
            .get(&domain_id)
            .filter(|d| d.site_id == site_id)
            .ok_or_else(|| ApiError::missing("DomainRecord", domain_id))
    }

    pub fn update_domain(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        domain_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.domain(org, server_id, site_id, domain_id)?;
        let mut input = Input::new(body);
        let www = input.one_of("www_redirect_type", true, v::WWW_REDIRECT_TYPES);
        let wildcard = input.boolean("allow_wildcard_subdomains", false);
        validated(input)?;
        let domain = self.domains.get_mut(&domain_id).ok_or_else(|| ApiError::missing("DomainRecord", domain_id))?;
        domain.www_redirect_type = www.unwrap_or_default();
        if let Some(w) = wildcard {
            domain.allow_wildcard_subdomains = w;
        }
        domain.updated_at = now;
        Ok(())
    }

    pub fn delete_domain(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        domain_id: u64,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.domain(org, server_id, site_id, domain_id)?;
        if let Some(d) = self.domains.get_mut(&domain_id) {
            d.deleted_at.get_or_insert(now);
        }
        Ok(())
    }

    pub fn domain_action(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        domain_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.domain(org, server_id, site_id, domain_id)?;
        let mut input = Input::new(body);
        let action = input.one_of("action", true, &["enable", "disable", "mark-as-primary"]);
        validated(input)?;
        if action.as_deref() == Some("mark-as-primary") {
            for d in self.domains.values_mut().filter(|d| d.site_id == site_id) {
                d.primary = d.id == domain_id;
                d.updated_at = now;
            }
        }
        Ok(())
    }
}
