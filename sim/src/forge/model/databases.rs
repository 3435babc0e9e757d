//! Database schemas and database users of a server (a schema can be created with its
//! user), with the name checks and grants Forge applies.

use super::{ApiError, OpResult, World, validated};
use crate::forge::validation::{self as v, Input};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Database {
    pub id: u64,
    pub server_id: u64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseUser {
    pub id: u64,
    pub server_id: u64,
    pub name: String,
    /// Grants (stored, never echoed: the API does not return them).
    pub database_ids: Vec<u64>,
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl World {
    pub fn create_database(
        &mut self,
        org: &str,
        server_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<(u64, Option<u64>)> {
        self.server(org, server_id)?;
        let mut input = Input::new(body);
        let name = input.string("name", true);
        if let Some(n) = &name {
            v::check_database_name(&mut input, "name", n);
            if !input.has_error("name") && self.databases.values().any(|d| d.server_id == server_id && &d.name == n) {
                v::taken(&mut input, "name");
            }
        }
        let user = input.string("user", false);
        if let Some(u) = &user {
            v::check_database_user(&mut input, "user", u);
            if !input.has_error("user")
                && self.database_users.values().any(|x| x.server_id == server_id && &x.name == u)
            {
                v::taken(&mut input, "user");
            }
        }
        let password = input.string_max("password", false, 255);
        if user.is_some() && password.is_none() {
            input.error("password", "The password field is required when user is present.");
        }
        input.id_list("backup_configuration_ids");
        validated(input)?;
        let id = self.alloc();
        self.databases
            .insert(id, Database { id, server_id, name: name.unwrap_or_default(), created_at: now, deleted_at: None });
        let user_id = user.map(|name| {
            let uid = self.alloc();
            self.database_users.insert(
                uid,
                DatabaseUser {
                    id: uid,
                    server_id,
                    name,
                    database_ids: vec![id],
                    read_only: false,
                    created_at: now,
                    updated_at: None,
                    deleted_at: None,
                },
            );
            uid
        });
        Ok((id, user_id))
    }

    pub fn database(&self, org: &str, server_id: u64, id: u64) -> OpResult<&Database> {
        self.server(org, server_id)?;
        self.databases.get(&id).filter(|d| d.server_id == server_id).ok_or_else(|| ApiError::missing("Database", id))
    }

    pub fn delete_database(&mut self, org: &str, server_id: u64, id: u64, now: DateTime<Utc>) -> OpResult<()> {
        self.database(org, server_id, id)?;
        if let Some(d) = self.databases.get_mut(&id) {
            d.deleted_at.get_or_insert(now);
        }
        for u in self.database_users.values_mut() {
            u.database_ids.retain(|d| *d != id);
        }
        Ok(())
    }

    /// Forget a record whose real side effect (MariaDB) failed.
    pub fn discard(&mut self, id: u64) {
        self.databases.remove(&id);
        self.database_users.remove(&id);
    }

    fn check_database_ids(&self, input: &mut Input<'_>, server_id: u64, ids: &[u64]) {
        if ids
            .iter()
            .any(|id| !self.databases.get(id).is_some_and(|d| d.server_id == server_id && d.deleted_at.is_none()))
        {
            input.error("database_ids", "The selected database ids is invalid.");
        }
    }

    pub fn create_database_user(
        &mut self,
        org: &str,
        server_id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<u64> {
        self.server(org, server_id)?;
        let mut input = Input::new(body);
        let name = input.string("name", true);
        if let Some(n) = &name {
            v::check_database_user(&mut input, "name", n);
            if !input.has_error("name")
                && self.database_users.values().any(|u| u.server_id == server_id && &u.name == n)
            {
                v::taken(&mut input, "name");
            }
        }
        input.string_max("password", true, 255);
        let ids = input.id_list("database_ids").unwrap_or_default();
        self.check_database_ids(&mut input, server_id, &ids);
        let read_only = input.boolean("read_only", false).unwrap_or(false);
        validated(input)?;
        let id = self.alloc();
        self.database_users.insert(
            id,
            DatabaseUser {
                id,
                server_id,
                name: name.unwrap_or_default(),
                database_ids: ids,
                read_only,
                created_at: now,
                updated_at: None,
                deleted_at: None,
            },
        );
        Ok(id)
    }

    pub fn database_user(&self, org: &str, server_id: u64, id: u64) -> OpResult<&DatabaseUser> {
        self.server(org, server_id)?;
        self.database_users
            .get(&id)
            .filter(|u| u.server_id == server_id)
            .ok_or_else(|| ApiError::missing("DatabaseUser", id))
    }

    /// PUT replaces the grants when `database_ids` is given.
    pub fn update_database_user(
        &mut self,
        org: &str,
        server_id: u64,
        id: u64,
        body: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> OpResult<()> {
        self.database_user(org, server_id, id)?;
        let mut input = Input::new(body);
        input.string_max("password", false, 255);
        let ids = input.id_list("database_ids");
        if let Some(ids) = &ids {
            self.check_database_ids(&mut input, server_id, ids);
        }
        validated(input)?;
        let user = self.database_users.get_mut(&id).ok_or_else(|| ApiError::missing("DatabaseUser", id))?;
        if let Some(ids) = ids {
            user.database_ids = ids;
        }
        user.updated_at = Some(now);
        Ok(())
    }

    pub fn delete_database_user(&mut self, org: &str, server_id: u64, id: u64, now: DateTime<Utc>) -> OpResult<()> {
        self.database_user(org, server_id, id)?;
        if let Some(u) = self.database_users.get_mut(&id) {
            u.deleted_at.get_or_insert(now);
        }
        Ok(())
    }
}
