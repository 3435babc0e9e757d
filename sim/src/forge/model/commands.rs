//! Commands run on a site (`…/sites/{site}/commands`); a command containing `exit 1`
//! fails.

use super::{ApiError, OpResult, World, validated};
use crate::forge::validation::Input;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteCommand {
    pub id: u64,
    pub site_id: u64,
    pub command: String,
    pub user_id: u64,
    pub fails: bool,
    pub created_at: DateTime<Utc>,
}

impl World {
    pub fn run_command(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        self.site(org, Some(server_id), site_id)?;
        let mut input = Input::new(body);
        let command = input.string("command", true);
        validated(input)?;
        let command = command.unwrap_or_default();
        let id = self.alloc();
        let fails = command.contains("exit 1");
        let user_id = self.user_id;
        self.commands.insert(id, SiteCommand { id, site_id, command, user_id, fails, created_at: now });
        Ok(id)
    }

    pub fn command(&self, org: &str, server_id: u64, site_id: u64, id: u64) -> OpResult<&SiteCommand> {
        self.site(org, Some(server_id), site_id)?;
        self.commands.get(&id).filter(|c| c.site_id == site_id).ok_or_else(|| ApiError::missing("SiteCommand", id))
    }

    pub fn delete_command(&mut self, org: &str, server_id: u64, site_id: u64, id: u64) -> OpResult<()> {
        self.command(org, server_id, site_id, id)?;
        self.commands.remove(&id);
        Ok(())
    }
}
