//! The Redis step: a SharedResourceClaim (owned by the environment) for a Redis
//! database number; the `.env` waits until it is Bound.

use super::Pass;
use crate::api::conditions::{self, READY};
use crate::api::shared_resource_claim::ClaimPhase;
use crate::controller::Error;
use crate::logic::preview::status::{Outcome, Reason};

impl Pass<'_> {
    pub(super) async fn redis(&mut self) -> Result<Outcome, Error> {
        let Some(settings) = &self.env.spec.redis else {
            self.status.redis_claim = None;
            self.status.redis_database = None;
            return Ok(Outcome::Done("no Redis database".into()));
        };
        let claim = self.cluster.redis_claim(self.env, settings.pool.as_deref().unwrap_or_default()).await?;
        let name = kube::ResourceExt::name_any(&claim);
        self.status.redis_claim = Some(name.clone());
        let status = claim.status.unwrap_or_default();
        if status.phase == Some(ClaimPhase::Bound)
            && let Some(db) = status.value.as_deref().and_then(|v| v.parse::<i32>().ok())
        {
            self.status.redis_database = Some(db);
            return Ok(Outcome::Done(format!("Redis database {db}")));
        }
        let why = conditions::get(&status.conditions, READY).map(|c| c.message.clone()).unwrap_or_default();
        Ok(Outcome::waiting(Reason::WaitingForRedis, format!("claim {name} is not Bound yet {why}").trim()))
    }
}
