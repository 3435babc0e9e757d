//! The `.env` step: written only when its hash differs from the last write; on a
//! drift check of a Ready environment, the file on Forge is compared too.

use super::Pass;
use crate::controller::Error;
use crate::forge::PutEnvironment;
use crate::logic::preview::status::Outcome;
use crate::logic::preview::{self, Generated};

impl Pass<'_> {
    pub(super) async fn environment(&mut self, drift_check: bool) -> Result<Outcome, Error> {
        let names = self.names();
        let credentials = &self.inputs.credentials;
        let generated =
            Generated {
                app_url: self.url(),
                app_key: Some(credentials.app_key.clone()),
                database: self.env.spec.database.as_ref().map(|_| {
                    (names.database.clone(), names.database_user.clone(), credentials.database_password.clone())
                }),
                redis: self.status.redis_database.map(|db| (db as u32, names.redis_prefix.clone())),
            };
        let content = preview::render_env(&generated, &self.inputs.dotenv);
        let hash = preview::short_hash(&content)[..16].to_string();
        let (forge, server, site) = (self.forge(), self.server(), self.site_id());
        let mut write = self.status.environment_hash.as_deref() != Some(hash.as_str());
        if !write && drift_check {
            let remote = forge.get_environment(server, site).await?;
            write = remote.trim_end() != content.trim_end();
        }
        if write {
            forge.put_environment(server, site, &PutEnvironment { environment: content, ..Default::default() }).await?;
            self.status.environment_hash = Some(hash);
        }
        Ok(Outcome::Done(".env is up to date".into()))
    }
}
