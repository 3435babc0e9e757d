//! Servers and the tags Forge attaches to servers and sites. The one server a fresh
//! world starts with is built from the defaults here.

use super::{ApiError, OpResult, World, validated};
use crate::forge::validation::Input;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Server {
    pub id: u64,
    pub organization: String,
    pub name: String,
    pub ip_address: String,
    #[serde(default)]
    pub private_ip_address: Option<String>,
    #[serde(default = "default_php")]
    pub php_version: String,
    #[serde(default = "default_db_type")]
    pub database_type: String,
    #[serde(default = "default_tz")]
    pub timezone: String,
    #[serde(default)]
    pub tags: Vec<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(super) fn default_php() -> String {
    "php84".into()
}
pub(super) fn default_db_type() -> String {
    "mariadb1011".into()
}
pub(super) fn default_tz() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tag {
    pub id: u64,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl World {
    pub fn update_server(
        &mut self,
        org: &str,
        server_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.server(org, server_id)?;
        let mut input = Input::new(body);
        let name = input.string_max("name", false, 255);
        let ip = input.string("ip_address", false);
        let private_ip = input.string("private_ip_address", false);
        let timezone = input.string("timezone", false);
        let tags = input.string_list("tags");
        validated(input)?;
        let tag_ids = tags.map(|t| t.iter().map(|n| self.tag_id(n, now)).collect::<Vec<_>>());
        let server = self.servers.get_mut(&server_id).ok_or_else(|| ApiError::missing("Server", server_id))?;
        if let Some(n) = name {
            server.name = n;
        }
        if let Some(ip) = ip {
            server.ip_address = ip;
        }
        if private_ip.is_some() {
            server.private_ip_address = private_ip;
        }
        if let Some(tz) = timezone {
            server.timezone = tz;
        }
        if let Some(ids) = tag_ids {
            server.tags = ids;
        }
        server.updated_at = now;
        Ok(())
    }
}
