//! Scheduled jobs (Forge's scheduler), at server or site level, and the cron line each
//! named frequency stands for.

use super::{ApiError, OpResult, World, validated};
use crate::forge::validation::{self as v, Input};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduledJob {
    pub id: u64,
    pub server_id: u64,
    pub site_id: Option<u64>,
    pub name: Option<String>,
    pub command: String,
    pub user: String,
    pub frequency: String,
    pub cron: String,
    pub heartbeat: Option<bool>,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Outcome of a site deletion the MariaDB side does not care about, but tests do.
pub fn frequency_cron(frequency: &str) -> &'static str {
    match frequency {
        "minutely" => "* * * * *",
        "hourly" => "0 * * * *",
        "nightly" => "0 0 * * *",
        "weekly" => "0 0 * * 0",
        "monthly" => "0 0 1 * *",
        "reboot" => "@reboot",
        _ => "",
    }
}

impl World {
    pub fn create_job(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: Option<u64>,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        match site_id {
            Some(s) => {
                self.site(org, Some(server_id), s)?;
            }
            None => {
                self.server(org, server_id)?;
            }
        }
        let mut input = Input::new(body);
        let command = input.string("command", true);
        let user = input.string("user", true);
        let frequency = input.one_of("frequency", true, v::JOB_FREQUENCIES);
        let cron = input.string("cron", frequency.as_deref() == Some("custom"));
        let name = input.string_max("name", false, 255);
        let heartbeat = input.boolean("heartbeat", false);
        validated(input)?;
        let frequency = frequency.unwrap_or_default();
        let cron =
            if frequency == "custom" { cron.unwrap_or_default() } else { frequency_cron(&frequency).to_string() };
        let id = self.alloc();
        self.scheduled_jobs.insert(
            id,
            ScheduledJob {
                id,
                server_id,
                site_id,
                name,
                command: command.unwrap_or_default(),
                user: user.unwrap_or_default(),
                frequency,
                cron,
                heartbeat,
                created_at: now,
                deleted_at: None,
            },
        );
        Ok(id)
    }

    pub fn job(&self, org: &str, server_id: u64, site_id: Option<u64>, id: u64) -> OpResult<&ScheduledJob> {
        self.server(org, server_id)?;
        if let Some(s) = site_id {
            self.site(org, Some(server_id), s)?;
        }
        self.scheduled_jobs
            .get(&id)
            .filter(|j| j.server_id == server_id && j.site_id == site_id)
            .ok_or_else(|| ApiError::missing("Job", id))
    }

    pub fn delete_job(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: Option<u64>,
        id: u64,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.job(org, server_id, site_id, id)?;
        if let Some(j) = self.scheduled_jobs.get_mut(&id) {
            j.deleted_at.get_or_insert(now);
        }
        Ok(())
    }
}
