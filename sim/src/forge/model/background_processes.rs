//! Background processes (workers, Forge's daemons) of a server, optionally tied to a
//! site: create, update, actions, delete.

use super::{ApiError, OpResult, World, validated};
use crate::forge::lifecycle;
use crate::forge::validation::Input;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackgroundProcess {
    pub id: u64,
    pub server_id: u64,
    pub name: String,
    pub command: String,
    pub user: String,
    pub directory: Option<String>,
    pub processes: i64,
    pub site_id: Option<u64>,
    pub startsecs: Option<i64>,
    pub stopwaitsecs: Option<i64>,
    pub stopsignal: Option<String>,
    pub config: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl World {
    pub fn create_background_process(
        &mut self,
        org: &str,
        server_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        self.server(org, server_id)?;
        let mut input = Input::new(body);
        let name = input.string_max("name", true, 255);
        let command = input.string("command", true);
        let user = input.string("user", true);
        let processes = input.integer("processes", true, 1);
        let site_id = input.integer("site_id", false, 1).map(|i| i as u64);
        let directory = input.string("directory", false);
        let startsecs = input.integer("startsecs", false, 0);
        let stopwaitsecs = input.integer("stopwaitsecs", false, 0);
        let stopsignal = input.string("stopsignal", false);
        let on_server = site_id.and_then(|s| self.sites.get(&s)).is_some_and(|s| s.server_id == server_id);
        if site_id.is_some() && !on_server {
            input.error("site_id", "The selected site id is invalid.");
        }
        // The document's enum: an isolated site's own user is not accepted.
        if let Some(u) = &user
            && u != "root"
            && u != "forge"
        {
            input.error("user", "The selected user is invalid.");
        }
        validated(input)?;
        let id = self.alloc();
        self.background_processes.insert(
            id,
            BackgroundProcess {
                id,
                server_id,
                name: name.unwrap_or_default(),
                command: command.unwrap_or_default(),
                user: user.unwrap_or_default(),
                directory,
                processes: processes.unwrap_or(1),
                site_id,
                startsecs,
                stopwaitsecs,
                stopsignal,
                config: None,
                created_at: now,
                updated_at: None,
                deleted_at: None,
            },
        );
        Ok(id)
    }

    pub fn background_process(&self, org: &str, server_id: u64, id: u64) -> OpResult<&BackgroundProcess> {
        self.server(org, server_id)?;
        self.background_processes
            .get(&id)
            .filter(|p| p.server_id == server_id)
            .ok_or_else(|| ApiError::missing("BackgroundProcess", id))
    }

    /// Forge answers 500 to an update without `config` (R2), so the sim does too.
    pub fn update_background_process(
        &mut self,
        org: &str,
        server_id: u64,
        id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.background_process(org, server_id, id)?;
        let mut input = Input::new(body);
        let name = input.string_max("name", true, 255);
        let config = input.string("config", false);
        validated(input)?;
        let Some(config) = config else {
            return Err(ApiError::Server("Server Error".into()));
        };
        let p = self.background_processes.get_mut(&id).ok_or_else(|| ApiError::missing("BackgroundProcess", id))?;
        p.name = name.unwrap_or_default();
        p.config = Some(config);
        p.updated_at = Some(now);
        Ok(())
    }

    pub fn background_process_action(
        &mut self,
        org: &str,
        server_id: u64,
        id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
        delay: Duration,
    ) -> OpResult<()> {
        let p = self.background_process(org, server_id, id)?;
        let status = lifecycle::install_status(p.created_at, p.deleted_at, now, delay);
        let mut input = Input::new(body);
        let action = input.one_of("action", true, &["restart", "stop", "start", "empty-log"]);
        validated(input)?;
        if action.as_deref() == Some("restart") && status != "installed" {
            return Err(ApiError::Server("Server Error".into()));
        }
        Ok(())
    }

    pub fn delete_background_process(
        &mut self,
        org: &str,
        server_id: u64,
        id: u64,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.background_process(org, server_id, id)?;
        if let Some(p) = self.background_processes.get_mut(&id) {
            p.deleted_at.get_or_insert(now);
        }
        Ok(())
    }
}
