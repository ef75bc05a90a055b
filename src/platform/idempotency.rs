//! `Idempotency-Key` for client-facing creates that move money or stock (checkout, starting a
//! payment), with the semantics of the IETF draft (draft-ietf-httpapi-idempotency-key-header):
//! the header is required (missing or longer than 255 characters: 400), keys belong to the
//! caller (`user:<id>`, `api_key:<id>`), the first response (status and JSON body) is kept
//! 24 hours and replayed to a retry with `Idempotent-Replayed: true`, the same key with
//! another request (method, path, query and body) is a 422, and a retry while the first
//! attempt is still running is a 409 with `Retry-After`.
//!
//! Correct under concurrency without a separate "in progress" row: everything happens in the
//! transaction of the work itself.
//! 1. [`Idempotency::begin`] takes `pg_try_advisory_xact_lock` on the (caller, key) hash and
//!    reads the stored response, in one statement. A stored response is replayed (or refused
//!    with 422 when the fingerprint differs); no stored response and no lock means another
//!    attempt holds the key right now: 409.
//! 2. The handler does its work on the same transaction.
//! 3. [`Idempotency::complete`] inserts the response before COMMIT. A failed attempt rolls
//!    back and stores nothing, so its retry runs again (a 4xx is an answer to the state at
//!    that moment, not a result worth replaying: the client may fix the cart and retry).
//!
//! The statement of step 1 reads with a snapshot taken as it starts, so an attempt whose
//! lock was released by a commit an instant earlier can miss the row that commit wrote. The
//! table's primary key catches that: the insert of step 3 finds the committed row and
//! reports it, the handler rolls its work back and replays the stored response
//! ([`Idempotency::replay`]). Advisory locks are database-wide, so this holds across replicas.
//!
//! ```ignore
//! let idem = Idempotency::of_request(&req, &user.actor(), &body)?;
//! let mut tx = platform.db.begin().await?;
//! if let Begun::Replay(stored) = idem.begin(&mut tx).await? {
//!     tx.rollback().await?;
//!     return Ok(stored.response());
//! }
//! let order = /* the work, on &mut tx */;
//! if !idem.complete(&mut tx, StatusCode::CREATED, &order).await? {
//!     tx.rollback().await?; // an attempt that raced us committed first
//!     return Ok(idem.replay(&platform.db).await?);
//! }
//! tx.commit().await?;
//! ```
//!
//! Round trips: `begin` and `complete` are one statement each. A job deletes expired keys.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use super::error::ApiError;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// Set on a replayed response.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// How long a stored response is replayed.
pub const TTL_HOURS: i64 = 24;

/// The stable codes of the problems this module answers with (in `KERNEL_CODES`).
pub const MISSING: &str = "idempotency_key_missing";
pub const INVALID: &str = "idempotency_key_invalid";
pub const REUSED: &str = "idempotency_key_reused";
pub const IN_FLIGHT: &str = "idempotency_key_in_flight";

/// One request's key, scoped to its caller, with the fingerprint of the request.
#[derive(Debug, Clone)]
pub struct Idempotency {
    caller: String,
    key: String,
    fingerprint: Vec<u8>,
}

/// What [`Idempotency::begin`] found.
#[derive(Debug)]
pub enum Begun {
    /// Nothing stored and the key is ours until the transaction ends: do the work.
    Fresh,
    /// The first attempt's response, to send again.
    Replay(Stored),
}

/// A stored response.
#[derive(Debug, Clone)]
pub struct Stored {
    pub status: StatusCode,
    pub body: serde_json::Value,
}

impl Stored {
    /// The stored response as it was first sent, marked `Idempotent-Replayed: true`.
    pub fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .insert_header((REPLAYED, HeaderValue::from_static("true")))
            .json(&self.body)
    }
}

impl Idempotency {
    /// Reads `Idempotency-Key` (400 `idempotency_key_missing` without it, 400
    /// `idempotency_key_invalid` when empty, longer than 255 characters or not visible
    /// ASCII) and fingerprints the request: method, path with query, and `body` as the
    /// handler parsed it (so key order and whitespace do not make two requests differ).
    /// Call it after authenticating, so an anonymous caller gets the 401.
    pub fn of_request(
        req: &HttpRequest,
        caller: &str,
        body: &impl Serialize,
    ) -> Result<Self, ApiError> {
        let value = req.headers().get(HEADER).ok_or_else(|| {
            ApiError::bad_request(
                MISSING,
                "This request needs an Idempotency-Key header (a unique value per operation, e.g. a UUID), so a retry cannot do it twice.",
            )
        })?;
        let key = value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
            .ok_or_else(|| {
                ApiError::bad_request(
                    INVALID,
                    format!("Idempotency-Key: 1 to {MAX_KEY_LEN} visible ASCII characters."),
                )
            })?;
        let body = serde_json::to_vec(body).map_err(ApiError::internal)?;
        let mut hash = Sha256::new();
        hash.update(req.method().as_str().as_bytes());
        hash.update(b"\n");
        hash.update(req.uri().path().as_bytes());
        hash.update(b"?");
        hash.update(req.uri().query().unwrap_or("").as_bytes());
        hash.update(b"\n");
        hash.update(&body);
        Ok(Self {
            caller: caller.to_owned(),
            key: key.to_owned(),
            fingerprint: hash.finalize().to_vec(),
        })
    }

    /// A stable, opaque name of this caller's key (hex SHA-256 of caller and key, 64
    /// characters), for the work to derive a downstream idempotency key from (a payment
    /// provider's): the same retry reaches the provider under the same name, another
    /// caller's same key does not.
    pub fn digest(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(self.caller.as_bytes());
        hash.update(b"\n");
        hash.update(self.key.as_bytes());
        hex::encode(hash.finalize())
    }

    /// In the work's transaction: takes the key (a transaction-scoped advisory lock) and
    /// reads its stored response, in one statement. A stored response for this request is
    /// [`Begun::Replay`]; for another request a 422 `idempotency_key_reused`; none while
    /// another attempt holds the key a 409 `idempotency_key_in_flight`.
    pub async fn begin(&self, conn: &mut PgConnection) -> Result<Begun, ApiError> {
        let row: (bool, Option<Vec<u8>>, Option<i16>, Option<serde_json::Value>) =
            sqlx::query_as(
                "WITH l AS (SELECT pg_try_advisory_xact_lock(hashtextextended($1 || E'\\n' || $2, 0)) AS locked)
                 SELECT l.locked, k.fingerprint, k.status, k.body
                   FROM l LEFT JOIN platform.idempotency_keys k
                     ON k.caller = $1 AND k.key = $2 AND k.expires_at > now()",
            )
            .bind(&self.caller)
            .bind(&self.key)
            .fetch_one(conn)
            .await?;
        match row {
            (_, Some(fingerprint), Some(status), Some(body)) => {
                self.stored(fingerprint, status, body)
            }
            (true, ..) => Ok(Begun::Fresh),
            (false, ..) => Err(in_flight()),
        }
    }

    /// Stores the response in the work's transaction, before its COMMIT. `false` when an
    /// attempt with the same key committed first (see the module header): roll the work
    /// back and answer with [`Idempotency::replay`].
    pub async fn complete(
        &self,
        conn: &mut PgConnection,
        status: StatusCode,
        body: &impl Serialize,
    ) -> Result<bool, ApiError> {
        let body = serde_json::to_value(body).map_err(ApiError::internal)?;
        // An expired row the sweeper has not reached yet is replaced; a live one is kept.
        let stored: Option<bool> = sqlx::query_scalar(
            "INSERT INTO platform.idempotency_keys (caller, key, fingerprint, status, body, expires_at)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(hours => $6))
             ON CONFLICT (caller, key) DO UPDATE
                SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
                    body = EXCLUDED.body, created_at = now(), expires_at = EXCLUDED.expires_at
              WHERE platform.idempotency_keys.expires_at <= now()
             RETURNING true",
        )
        .bind(&self.caller)
        .bind(&self.key)
        .bind(&self.fingerprint)
        .bind(status.as_u16() as i16)
        .bind(&body)
        .bind(TTL_HOURS as i32)
        .fetch_optional(conn)
        .await?;
        Ok(stored.is_some())
    }

    /// The response an attempt that won the race stored (after [`Idempotency::complete`]
    /// returned `false` and the work was rolled back): replayed, or a 422 when it answered
    /// another request.
    pub async fn replay(&self, db: &PgPool) -> Result<HttpResponse, ApiError> {
        let row: Option<(Vec<u8>, i16, serde_json::Value)> = sqlx::query_as(
            "SELECT fingerprint, status, body FROM platform.idempotency_keys
              WHERE caller = $1 AND key = $2 AND expires_at > now()",
        )
        .bind(&self.caller)
        .bind(&self.key)
        .fetch_optional(db)
        .await?;
        match row {
            Some((fingerprint, status, body)) => match self.stored(fingerprint, status, body)? {
                Begun::Replay(stored) => Ok(stored.response()),
                Begun::Fresh => Err(in_flight()),
            },
            None => Err(in_flight()),
        }
    }

    fn stored(
        &self,
        fingerprint: Vec<u8>,
        status: i16,
        body: serde_json::Value,
    ) -> Result<Begun, ApiError> {
        if fingerprint != self.fingerprint {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, REUSED).detail(
                "This Idempotency-Key was used for a different request; use a new key for a new request.",
            ));
        }
        let status = u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        Ok(Begun::Replay(Stored { status, body }))
    }
}

fn in_flight() -> ApiError {
    ApiError::conflict(
        IN_FLIGHT,
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    )
    .header(header::RETRY_AFTER, HeaderValue::from_static("1"))
}

/// Deletes up to 1000 expired keys; the job calls it until a batch comes back short.
pub async fn prune(db: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM platform.idempotency_keys
          WHERE (caller, key) IN (SELECT caller, key FROM platform.idempotency_keys
                                   WHERE expires_at <= now() ORDER BY expires_at LIMIT 1000)",
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn key(req: &HttpRequest, body: serde_json::Value) -> Result<Idempotency, ApiError> {
        Idempotency::of_request(req, "user:1", &body)
    }

    #[test]
    fn a_missing_empty_or_long_key_is_a_400() {
        let req = TestRequest::post().uri("/x").to_http_request();
        assert_eq!(
            key(&req, serde_json::json!({})).unwrap_err().code(),
            MISSING
        );
        for bad in ["", "   ", &"k".repeat(256)] {
            let req = TestRequest::post()
                .uri("/x")
                .insert_header((HEADER, bad))
                .to_http_request();
            assert_eq!(
                key(&req, serde_json::json!({})).unwrap_err().code(),
                INVALID,
                "{bad:?}"
            );
        }
        let req = TestRequest::post()
            .uri("/x")
            .insert_header((HEADER, "k".repeat(255)))
            .to_http_request();
        assert!(key(&req, serde_json::json!({})).is_ok());
    }

    #[test]
    fn the_fingerprint_covers_method_path_query_and_body_but_not_key_order() {
        let req = |method: actix_web::http::Method, uri: &str| {
            TestRequest::default()
                .method(method)
                .uri(uri)
                .insert_header((HEADER, "abc"))
                .to_http_request()
        };
        use actix_web::http::Method;
        let a = key(
            &req(Method::POST, "/o"),
            serde_json::json!({"a": 1, "b": 2}),
        )
        .unwrap();
        let same = key(
            &req(Method::POST, "/o"),
            serde_json::json!({"b": 2, "a": 1}),
        )
        .unwrap();
        assert_eq!(a.fingerprint, same.fingerprint);
        for other in [
            key(
                &req(Method::POST, "/o"),
                serde_json::json!({"a": 1, "b": 3}),
            )
            .unwrap(),
            key(&req(Method::PUT, "/o"), serde_json::json!({"a": 1, "b": 2})).unwrap(),
            key(
                &req(Method::POST, "/p"),
                serde_json::json!({"a": 1, "b": 2}),
            )
            .unwrap(),
            key(
                &req(Method::POST, "/o?x=1"),
                serde_json::json!({"a": 1, "b": 2}),
            )
            .unwrap(),
        ] {
            assert_ne!(a.fingerprint, other.fingerprint);
        }
        // A stored response for another fingerprint is refused, for the same one replayed.
        let body = serde_json::json!({"id": 1});
        let other = vec![0u8; 32];
        assert_eq!(
            a.stored(other, 201, body.clone()).unwrap_err().code(),
            REUSED
        );
        match a.stored(a.fingerprint.clone(), 201, body.clone()).unwrap() {
            Begun::Replay(s) => {
                assert_eq!(s.status, StatusCode::CREATED);
                assert_eq!(s.body, body);
            }
            Begun::Fresh => panic!("expected a replay"),
        }
    }
}
