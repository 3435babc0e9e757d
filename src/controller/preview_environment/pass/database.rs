//! The database step: the schema and user on Forge (names claimed in status
//! before either is created), then the fill: `clone` from the snapshot over the
//! MySQL admin connection, or `dump` as a site command once the site exists.

use super::Pass;
use crate::api::preview_environment::CloneStrategy;
use crate::backends::mysql::MysqlAdmin;
use crate::controller::{Error, kit};
use crate::forge::ensure;
use crate::forge::{CreateDatabase, CreateDatabaseUser, Password};
use crate::logic::preview::status::{Outcome, Reason, StepCondition};

/// Tables copied at once by `clone`.
const CLONE_PARALLELISM: usize = 4;

impl Pass<'_> {
    pub(super) async fn database(&mut self) -> Result<Outcome, Error> {
        let Some(settings) = self.env.spec.database.clone() else {
            return Ok(Outcome::Done("no database".into()));
        };
        let done = |name: &str| Outcome::Done(format!("database {name} is ready"));
        if self.settled(StepCondition::DatabaseReady)
            && self.status.database_id.is_some()
            && self.status.database_user_id.is_some()
        {
            return Ok(done(self.status.database_name.as_deref().unwrap_or_default()));
        }
        let (forge, server) = (self.forge(), self.server());
        let names = self.names();
        let schema = match self.status.database_id {
            Some(id) => kit::forge_found(forge.get_database(server, id as u64).await)?
                .filter(|d| d.name == names.database && !super::going_away(&d.status)),
            None => None,
        };
        let schema = match schema {
            Some(s) => s,
            None => {
                self.claim_database_names().await?;
                let req = CreateDatabase { name: names.database.clone(), ..Default::default() };
                ensure::ensure_database(forge, server, &req, self.opts).await?.value
            }
        };
        self.status.database_id = Some(schema.id as i64);
        self.status.database_name = Some(schema.name.clone());
        let user = match self.status.database_user_id {
            Some(id) => kit::forge_found(forge.get_database_user(server, id as u64).await)?
                .filter(|u| u.name == names.database_user && !super::going_away(&u.status)),
            None => None,
        };
        let user = match user {
            Some(u) => u,
            None => {
                let req = CreateDatabaseUser {
                    name: names.database_user.clone(),
                    password: Password::new(self.inputs.credentials.database_password.clone()),
                    database_ids: vec![schema.id],
                    read_only: None,
                };
                ensure::ensure_database_user(forge, server, &req, self.opts).await?.value
            }
        };
        self.status.database_user_id = Some(user.id as i64);
        self.status.database_user = Some(user.name.clone());
        if schema.status != "installed" || user.status != "installed" {
            let message = format!("schema {} is {}, user {} is {}", schema.name, schema.status, user.name, user.status);
            return Ok(Outcome::waiting(Reason::DatabaseProvisioning, message));
        }
        match settings.strategy {
            CloneStrategy::Empty => self.status.database_seeded = Some(true),
            CloneStrategy::Clone if self.status.database_seeded != Some(true) => {
                let (Some(url), Some(snapshot)) = (self.inputs.admin_url.as_deref(), settings.snapshot.as_deref())
                else {
                    return Err(Error::invalid(
                        "SnapshotMissing",
                        "strategy clone needs snapshot and adminCredentialsSecretRef",
                    ));
                };
                let admin = MysqlAdmin::new(url).map_err(|e| Error::invalid("AdminCredentialsInvalid", e.message))?;
                let result = admin.clone_database(snapshot, &schema.name, CLONE_PARALLELISM).await;
                admin.disconnect().await;
                let report = result?;
                tracing::info!(env = %kube::ResourceExt::name_any(self.env), tables = report.tables, views = report.views,
                    triggers = report.triggers, "database cloned from {snapshot}");
                self.status.database_seeded = Some(true);
            }
            CloneStrategy::Clone | CloneStrategy::Dump => {}
        }
        Ok(done(&schema.name))
    }

    /// Databases carry no tags on Forge, so an environment claims its database and
    /// user names in status before creating either. A schema or user with that name
    /// that exists before the claim belongs to someone else (another environment of
    /// the same project and pull request, or one made by hand): it is neither
    /// adopted nor, when this environment is deleted, dropped.
    async fn claim_database_names(&mut self) -> Result<(), Error> {
        if self.status.database_name.is_some() {
            return Ok(());
        }
        let (forge, server) = (self.forge(), self.server());
        let names = self.names();
        let taken = if ensure::find_database(forge, server, &names.database).await?.is_some() {
            Some(format!("database {}", names.database))
        } else if ensure::find_database_user(forge, server, &names.database_user).await?.is_some() {
            Some(format!("database user {}", names.database_user))
        } else {
            None
        };
        if let Some(taken) = taken {
            return Err(Error::invalid(
                "DatabaseNameTaken",
                format!(
                    "Forge server {server} already has a {taken} that this environment did not create; \
                     delete it or give this environment another spec.project"
                ),
            ));
        }
        self.status.database_name = Some(names.database.clone());
        self.status.database_user = Some(names.database_user.clone());
        self.save().await
    }

    /// The `dump` fill: `mysqldump | mysql` as a Forge site command, run once. The
    /// command names no credentials: it relies on the site user's MySQL client config.
    pub(super) async fn seed_by_dump(&mut self) -> Result<Outcome, Error> {
        let Some(settings) = &self.env.spec.database else { return Ok(Outcome::Done(String::new())) };
        if settings.strategy != CloneStrategy::Dump || self.status.database_seeded == Some(true) {
            return Ok(Outcome::Done(String::new()));
        }
        let (Some(site), Some(snapshot), Some(target)) =
            (self.status.site_id, settings.snapshot.as_deref(), self.status.database_name.clone())
        else {
            return Ok(Outcome::waiting(Reason::DatabaseProvisioning, "waiting for the site and schema"));
        };
        let command = format!("mysqldump --single-transaction --routines --triggers {snapshot} | mysql {target}");
        let (forge, server, site) = (self.forge(), self.server(), site as u64);
        let newest = forge.list_site_commands(server, site, Some(&command), Some(5)).await?;
        let latest = newest.into_iter().filter(|c| c.command == command).max_by_key(|c| c.id);
        match latest {
            Some(c) if c.status == "finished" => {
                self.status.database_seeded = Some(true);
                Ok(Outcome::Done(String::new()))
            }
            Some(c) if !c.is_terminal() => {
                Ok(Outcome::waiting(Reason::DatabaseSeeding, format!("dump of {snapshot} is {}", c.status)))
            }
            previous => {
                if previous.is_some() {
                    tracing::warn!(env = %kube::ResourceExt::name_any(self.env), "dump of {snapshot} failed; running it again");
                }
                ensure::run_command(forge, server, site, &command, self.opts).await?;
                Ok(Outcome::waiting(Reason::DatabaseSeeding, format!("dumping {snapshot} into {target}")))
            }
        }
    }
}
