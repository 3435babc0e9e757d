//! The site step: the Forge site by recorded id, else by name (adopted only if it
//! carries our tag, `logic::preview::site_adoption`), else created. A site deleted
//! out of band is created again, and what lived on it is forgotten.

use super::{Pass, owner_tag};
use crate::api::preview_environment::CloneStrategy;
use crate::controller::{Error, kit};
use crate::forge::ensure;
use crate::forge::{CreateSite, Site, UpdateSite};
use crate::logic::preview::status::{self, Outcome, Reason, StepCondition};
use crate::logic::preview::{SiteAdoption, site_adoption};

impl Pass<'_> {
    pub(super) async fn site(&mut self) -> Result<Outcome, Error> {
        let (forge, server) = (self.forge(), self.server());
        let domain = self.inputs.names.domain.clone();
        let tag = owner_tag(self.env);
        if self.settled(StepCondition::SiteReady) && self.status.site_id.is_some() {
            return Ok(Outcome::Done(format!("site {domain} is installed")));
        }
        let mut site: Option<Site> = None;
        if let Some(id) = self.status.site_id {
            match kit::forge_found(forge.get_site(id as u64).await)? {
                Some(s) if !super::going_away(&s.status) && s.name == domain => site = Some(s),
                Some(_) => {}
                None => {
                    let note = format!("site {id} ({domain}) is gone from Forge; creating it again");
                    self.cluster.event(self.env, true, "SiteMissing", "Reconcile", note).await;
                    self.forget_site();
                }
            }
        }
        let site = match site {
            Some(s) => s,
            None => {
                let found = ensure::find_site(forge, server, &domain).await?;
                let adoption = site_adoption(found.as_ref().map(|s| (s.tags.as_slice(), s.status.as_str())), &tag);
                match (adoption, found) {
                    (SiteAdoption::Adopt, Some(site)) => site,
                    (SiteAdoption::Foreign, _) => {
                        return Err(Error::invalid(
                            "SiteNameTaken",
                            format!(
                                "Forge server {server} already has a site {domain} that this environment did not \
                                 create; choose another domain or delete that site"
                            ),
                        ));
                    }
                    (SiteAdoption::WaitForRemoval, _) => {
                        let message = format!("old site {domain} is still being removed");
                        return Ok(Outcome::waiting(Reason::SiteRemoving, message));
                    }
                    (SiteAdoption::Adopt | SiteAdoption::Create, _) => {
                        let created =
                            ensure::ensure_site(forge, server, &self.site_request(&tag), self.opts).await?.value;
                        if !created.tags.is_empty() && !created.tags.contains(&tag) {
                            return Err(Error::invalid(
                                "SiteNameTaken",
                                format!("site {domain} was created concurrently by someone else"),
                            ));
                        }
                        created
                    }
                }
            }
        };
        if self.status.site_id != Some(site.id as i64) {
            self.forget_site();
            self.status.site_id = Some(site.id as i64);
        }
        let php = &self.env.spec.site.php_version;
        if crate::forge::site_provisioned(&site.status) && site.php_version.as_deref().is_some_and(|v| v != php) {
            let update = UpdateSite { php_version: Some(php.clone()), ..Default::default() };
            forge.update_site(server, site.id, &update).await?;
        }
        let ready = site.is_ready();
        let message = format!("site {domain} is {}", site.status);
        self.site = Some(site);
        if !ready {
            return Ok(Outcome::waiting(Reason::SiteInstalling, message));
        }
        Ok(Outcome::Done(format!("site {domain} is installed")))
    }

    fn site_request(&self, tag: &str) -> CreateSite {
        let spec = &self.env.spec;
        let site_type = serde_json::to_value(spec.site.type_).ok().and_then(|v| v.as_str().map(String::from));
        let mut req =
            CreateSite::custom_domain(&self.inputs.names.domain, site_type.unwrap_or_else(|| "laravel".into()));
        req.web_directory = spec.site.web_directory.clone();
        req.php_version = Some(spec.site.php_version.clone());
        req.is_isolated = Some(spec.site.isolated);
        req.isolated_user = self.inputs.names.isolated_user.clone();
        req.source_control_provider = Some("github".into());
        req.repository = Some(spec.repository.clone());
        req.branch = Some(spec.branch.clone());
        req.push_to_deploy = Some(spec.deploy.push_to_deploy);
        req.tags = Some(vec!["switchyard".into(), tag.to_string()]);
        req
    }

    /// Forgets what lived on a site that is gone (Forge deletes workers with it),
    /// and the conditions that vouched for it: a replaced site has none of its
    /// workers, certificate or deployment yet, and no status write in between may
    /// say otherwise.
    fn forget_site(&mut self) {
        let generation = self.generation();
        status::forget_site(&mut self.status.conditions, generation);
        let s = &mut self.status;
        s.site_id = None;
        s.environment_hash = None;
        s.worker_ids.clear();
        s.domain_id = None;
        s.certificate_id = None;
        s.certificate_failures = None;
        s.last_deployment = None;
        s.deployment_request = None;
        if self.env.spec.database.as_ref().is_some_and(|d| d.strategy == CloneStrategy::Dump) {
            s.database_seeded = None;
        }
    }
}
