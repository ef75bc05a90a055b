//! The one page shape of every list endpoint: `{ "items": [...], "next": "<cursor>" }`.
//!
//! Lists are keyset-paged. A handler asks the repository for [`PageQuery::fetch`] rows
//! (`limit + 1`), and [`Page::from_rows`] keeps `limit` of them and makes `next` from the
//! last one kept only when the extra row proved there is more, so a client never fetches an
//! empty last page. Cursors are opaque to clients: base64url of the sort key's JSON. They
//! carry the key's values, never an id the server would look up, so a cursor made up by a
//! client reveals nothing about rows it cannot see; one that does not decode is a 400
//! `invalid_cursor`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;

/// Rows per page when the client does not say.
pub const DEFAULT_LIMIT: i64 = 25;
/// The most rows one page may hold; past it a 400.
pub const MAX_LIMIT: i64 = 100;

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `limit` and `after`, the query parameters every list endpoint takes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page: 1 to 100, default 25.
    #[param(minimum = 1, maximum = 100, default = 25)]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

impl PageQuery {
    /// The page size asked for, checked against [`MAX_LIMIT`].
    pub fn limit(&self) -> Result<i64, ApiError> {
        limit(self.limit)
    }

    /// How many rows to fetch: one more than the page holds, to know whether another follows.
    pub fn fetch(&self) -> Result<i64, ApiError> {
        Ok(self.limit()? + 1)
    }

    /// The decoded `after` cursor.
    pub fn cursor<C: DeserializeOwned>(&self) -> Result<Option<C>, ApiError> {
        self.after.as_deref().map(decode).transpose()
    }
}

/// A page size: `DEFAULT_LIMIT` unless asked, never past `MAX_LIMIT` (a 400 otherwise).
pub fn limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(
            "invalid_query",
            format!("limit: must be between 1 and {MAX_LIMIT}"),
        ))
    }
}

/// Encodes a sort key as an opaque cursor.
pub fn encode<C: Serialize>(key: &C) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Decodes a cursor made by [`encode`]; anything else is a 400 `invalid_cursor`.
pub fn decode<C: DeserializeOwned>(cursor: &str) -> Result<C, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        // No cursor the server makes holds U+0000, which PostgreSQL cannot bind as text.
        .filter(|bytes| !bytes.windows(6).any(|w| w == b"\\u0000"))
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "after: not a cursor this list handed out; pass the `next` of the previous page.",
            )
        })
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: keeps `limit`, and when there was one
    /// more, makes `next` from the sort key of the last row kept.
    pub fn from_rows<R, C: Serialize>(
        mut rows: Vec<R>,
        limit: i64,
        key: impl Fn(&R) -> C,
        item: impl FnMut(R) -> T,
    ) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|r| encode(&key(r)))
        } else {
            None
        };
        Self {
            items: rows.into_iter().map(item).collect(),
            next,
        }
    }

    /// A list that is bounded by a hard cap below one page (a collection's attributes,
    /// say): all of it, on one page.
    pub fn all(items: Vec<T>) -> Self {
        Self { items, next: None }
    }

    /// The same page with its items converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_page_has_a_next_cursor_only_when_a_row_follows() {
        let exact = Page::from_rows(vec![1, 2, 3], 3, |r| *r, |r| r);
        assert_eq!(exact.items, vec![1, 2, 3]);
        assert!(exact.next.is_none(), "no empty last page");

        let more = Page::from_rows(vec![1, 2, 3, 4], 3, |r| *r, |r| r * 10);
        assert_eq!(more.items, vec![10, 20, 30]);
        assert_eq!(decode::<i32>(more.next.as_deref().unwrap()).unwrap(), 3);
    }

    #[test]
    fn tampered_cursors_are_a_400() {
        let e = decode::<(String, i64)>("not*base64").unwrap_err();
        assert_eq!(e.code(), "invalid_cursor");
        let e = decode::<(String, i64)>(&encode(&"just a string")).unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        let e = decode::<(String, i64)>(&encode(&("a\0b", 1))).unwrap_err();
        assert_eq!(e.code(), "invalid_cursor", "a NUL is not a cursor's");
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(MAX_LIMIT + 1)).is_err());
    }
}
