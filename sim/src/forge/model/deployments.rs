//! Deployments of a site: triggering one and finding the one still running (its
//! status is computed from timestamps in `lifecycle`).

use super::{ApiError, OpResult, World};
use crate::forge::lifecycle;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    pub id: u64,
    pub site_id: u64,
    pub commit_hash: Option<String>,
    pub commit_author: Option<String>,
    pub commit_message: Option<String>,
    pub branch: Option<String>,
    pub kind: String,
    pub fails: bool,
    pub created_at: DateTime<Utc>,
}

impl World {
    pub fn trigger_deployment(
        &mut self,
        org: &str,
        server_id: u64,
        site_id: u64,
        fails: bool,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        let site = self.site(org, Some(server_id), site_id)?;
        if site.deleted_at.is_some() {
            return Err(ApiError::missing("Site", site_id));
        }
        let branch = site.repository.as_ref().and_then(|r| r.branch.clone());
        let id = self.alloc();
        self.deployments.insert(
            id,
            Deployment {
                id,
                site_id,
                commit_hash: Some(format!("{:040x}", id.wrapping_mul(0x9e37_79b9_7f4a_7c15))),
                commit_author: Some("Switchyard Sim".into()),
                commit_message: Some(format!("Deployment {id}")),
                branch,
                kind: "manual".into(),
                fails,
                created_at: now,
            },
        );
        Ok(id)
    }

    pub fn deployment(&self, org: &str, server_id: u64, site_id: u64, deployment_id: u64) -> OpResult<&Deployment> {
        self.site(org, Some(server_id), site_id)?;
        self.deployments
            .get(&deployment_id)
            .filter(|d| d.site_id == site_id)
            .ok_or_else(|| ApiError::missing("Deployment", deployment_id))
    }

    /// The running deployment of a site, if any (`site.deployment_status` and `…/deployments/status`).
    pub fn running_deployment(
        &self,
        site_id: u64,
        now: DateTime<Utc>,
        delay: Duration,
    ) -> Option<(&Deployment, lifecycle::DeploymentView)> {
        self.deployments
            .values()
            .rev()
            .filter(|d| d.site_id == site_id)
            .map(|d| (d, lifecycle::deployment_view(d.created_at, d.fails, now, delay)))
            .find(|(_, view)| !lifecycle::deployment_is_terminal(view.status))
    }
}
