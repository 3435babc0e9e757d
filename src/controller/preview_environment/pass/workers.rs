//! The workers step: the site's background processes made equal to the spec's
//! queue workers (`logic::preview::plan_workers` decides what to keep, create, delete).

use kube::ResourceExt;

use super::Pass;
use crate::controller::{Error, kit};
use crate::forge::CreateBackgroundProcess;
use crate::forge::ensure;
use crate::logic::preview::status::{Outcome, Reason, StepCondition};
use crate::logic::preview::{self, ObservedWorker};

impl Pass<'_> {
    pub(super) async fn workers(&mut self) -> Result<Outcome, Error> {
        let installed = |n: usize| Outcome::Done(format!("{n} queue worker(s) installed"));
        if self.settled(StepCondition::WorkersReady) {
            return Ok(installed(self.status.worker_ids.len()));
        }
        let (forge, server, site_id) = (self.forge(), self.server(), self.site_id());
        let observed = forge.list_background_processes(server, Some(site_id)).await?;
        let live: Vec<_> = observed.iter().filter(|p| !super::going_away(&p.status)).collect();
        let as_observed: Vec<ObservedWorker> = live
            .iter()
            .map(|p| ObservedWorker { id: p.id, command: p.command.clone(), processes: p.processes })
            .collect();
        let isolated = self.names().isolated_user.clone();
        let plan = preview::plan_workers(&self.env.spec.workers, isolated.as_deref(), &as_observed);
        for id in &plan.delete {
            kit::forge_gone(forge.delete_background_process(server, *id).await)?;
        }
        // Workers are identified by their directory too: use the site's real root.
        if self.site.is_none() && !plan.create.is_empty() {
            self.site = Some(forge.get_site(site_id).await?);
        }
        let names = self.names();
        let directory = self.site.as_ref().and_then(|s| s.root_directory.clone());
        let directory = directory.unwrap_or_else(|| format!("/home/{}/{}", names.site_user(), names.domain));
        let mut ids = plan.keep.clone();
        for worker in &plan.create {
            let req = CreateBackgroundProcess {
                name: format!("{}-{}", self.env.name_any(), worker.name),
                command: preview::worker_command(worker, isolated.as_deref()),
                user: preview::worker_user(isolated.as_deref()).to_string(),
                processes: worker.processes.max(1) as u32,
                site_id: Some(site_id),
                directory: Some(directory.clone()),
                startsecs: None,
                stopwaitsecs: None,
                stopsignal: None,
            };
            let created = ensure::ensure_background_process(forge, server, &req, self.opts).await?;
            ids.push(created.value.id);
        }
        self.status.worker_ids = ids.iter().map(|id| *id as i64).collect();
        let installing = live.iter().filter(|p| plan.keep.contains(&p.id) && p.status != "installed").count();
        if !plan.create.is_empty() || !plan.delete.is_empty() || installing > 0 {
            let (created, removed) = (plan.create.len(), plan.delete.len());
            let message = format!("{created} created, {removed} removed, {installing} installing");
            return Ok(Outcome::waiting(Reason::WorkersInstalling, message));
        }
        Ok(installed(ids.len()))
    }
}
