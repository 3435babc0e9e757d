//! JSON:API documents over [`HttpForgeClient::send`]: a document, one typed resource,
//! and lists that follow `meta.next_cursor` page by page.

use super::HttpForgeClient;
use super::request::Call;
use crate::forge::api::ForgeResult;
use crate::forge::jsonapi::{self, Included, Resource};
use crate::forge::models::Certificate;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub(super) fn typed<A: DeserializeOwned>(r: Resource<A>, set_id: impl FnOnce(&mut A, u64)) -> A {
    let mut a = r.attributes;
    set_id(&mut a, r.id);
    a
}

impl HttpForgeClient {
    pub(super) async fn doc(&self, call: Call) -> ForgeResult<Value> {
        let body = self.send(call).await?;
        jsonapi::parse(&body)
    }

    pub(super) async fn one<T: DeserializeOwned>(
        &self,
        call: Call,
        set_id: impl FnOnce(&mut T, u64),
    ) -> ForgeResult<T> {
        let doc = self.doc(call).await?;
        Ok(typed(jsonapi::single::<T>(&doc)?, set_id))
    }

    /// Follow `meta.next_cursor` until the last page or `limit` items.
    pub(super) async fn list<T>(
        &self,
        path: String,
        query: Vec<(String, String)>,
        limit: Option<usize>,
        map: impl Fn(&Value, &Included) -> ForgeResult<T>,
    ) -> ForgeResult<Vec<T>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        let page_size =
            limit.map(|l| l.min(self.config.page_size as usize).max(1)).unwrap_or(self.config.page_size as usize);
        loop {
            let mut call = Call::get(path.clone()).with_query("page[size]", page_size.to_string());
            call.query.extend(query.iter().cloned());
            if let Some(c) = &cursor {
                call = call.with_query("page[cursor]", c.clone());
            }
            let doc = self.doc(call).await?;
            let page = jsonapi::page(&doc)?;
            for item in &page.items {
                out.push(map(item, &page.included)?);
                if limit.is_some_and(|l| out.len() >= l) {
                    return Ok(out);
                }
            }
            match page.next_cursor {
                Some(c) if !page.items.is_empty() && cursor.as_deref() != Some(c.as_str()) => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    pub(super) async fn list_certificates_at(&self, path: String) -> ForgeResult<Vec<Certificate>> {
        let doc = self.doc(Call::get(path)).await?;
        let items = match &doc["data"] {
            Value::Array(a) => a.clone(),
            _ => jsonapi::page(&doc)?.items,
        };
        items.iter().map(|v| Ok(typed(jsonapi::resource::<Certificate>(v)?, |a, id| a.id = id))).collect()
    }
}
