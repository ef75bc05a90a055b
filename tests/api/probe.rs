//! `probe`: a small domain the tests plug in through `Application::builder(..).domain(..)`,
//! the same contract the built-in domains use. It exercises what the kernel offers a domain:
//! its own schema and migrations, routes under /api/v1/probe, validated JSON, identity,
//! the outbox inside a transaction, a subscriber, a health check and OpenAPI.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{HttpResponse, web};
use basalt::platform::events::{self, Subscriber, subscriber_fn};
use basalt::platform::health::HealthCheck;
use basalt::platform::http::{Endpoint, Routes, ValidatedJson};
use basalt::platform::identity::MaybeUser;
use basalt::platform::jobs::Job;
use basalt::platform::{ApiError, CurrentUser, Domain, Platform};
use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;
use uuid::Uuid;
use validator::Validate;

static MIGRATIONS: Migrator = sqlx::migrate!("tests/api/migrations/probe");

#[derive(Default, Clone)]
pub struct Probe {
    /// Set by a test to make the subscriber fail (to exercise retries).
    pub subscriber_fails: Arc<AtomicBool>,
    /// Set when a request to /slow has reached its handler.
    pub slow_started: Arc<AtomicBool>,
    /// Set by a test to make the probe's background job hang (a stuck job at shutdown).
    pub job_hangs: Arc<AtomicBool>,
    /// Set when the job has started hanging.
    pub job_stuck: Arc<AtomicBool>,
}

/// The probe's one typed event, declared the way domains declare theirs.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NoteCreated {
    pub note_id: Uuid,
    pub body: String,
}

basalt::declare_events! {
    source = "probe";
    NoteCreated = "probe.note_created" by note_id,
}

#[derive(Deserialize, Validate, utoipa::ToSchema)]
pub struct NoteRequest {
    #[validate(length(min = 1, max = 20))]
    pub body: String,
    #[validate(email)]
    pub email: String,
    /// Publish, then fail before commit: the event must never be delivered.
    #[serde(default)]
    pub fail_after_publish: bool,
}

async fn create_note(
    platform: web::Data<Platform>,
    // Signing in is optional; when a caller is known, its events name it.
    _caller: MaybeUser,
    body: ValidatedJson<NoteRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::now_v7();
    let mut tx = platform.db.begin().await?;
    sqlx::query("INSERT INTO probe.notes (id, body) VALUES ($1, $2)")
        .bind(id)
        .bind(&body.body)
        .execute(&mut *tx)
        .await?;
    let event_id = events::publish(
        &mut tx,
        &NoteCreated {
            note_id: id,
            body: body.body.clone(),
        },
    )
    .await?;
    if body.fail_after_publish {
        tx.rollback().await?;
        return Err(ApiError::internal(anyhow::anyhow!(
            "asked to fail after publishing"
        )));
    }
    tx.commit().await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "id": id, "event_id": event_id })))
}

async fn slow(started: web::Data<Arc<AtomicBool>>) -> HttpResponse {
    started.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    HttpResponse::Ok().json(serde_json::json!({ "slow": true }))
}

async fn boom() -> Result<HttpResponse, ApiError> {
    Err(ApiError::internal(anyhow::anyhow!(
        "secret internal detail: connection string postgres://x"
    )))
}

async fn whoami(user: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "id": user.id, "roles": user.roles }))
}

async fn moderate(user: CurrentUser) -> Result<HttpResponse, ApiError> {
    user.require("probe.notes.moderate")?;
    Ok(HttpResponse::NoContent().finish())
}

async fn get_note(
    platform: web::Data<Platform>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let body: Option<String> = sqlx::query_scalar("SELECT body FROM probe.notes WHERE id = $1")
        .bind(*id)
        .fetch_optional(&platform.db)
        .await?;
    let body = body.ok_or_else(|| ApiError::not_found("No such note."))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "id": *id, "body": body })))
}

/// Documented like a real domain: paths relative to the domain's prefix.
#[utoipa::path(post, path = "/notes", request_body = NoteRequest, responses((status = 201, description = "Created")))]
#[allow(dead_code)]
fn create_note_doc() {}

#[derive(utoipa::OpenApi)]
#[openapi(paths(create_note_doc), components(schemas(NoteRequest)))]
struct ProbeApi;

impl Domain for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }
    fn schema(&self) -> &'static str {
        "probe"
    }
    fn events(&self) -> &'static [&'static str] {
        // `probe.tick` is published untyped by the tests, as an envelope from elsewhere.
        &["probe.note_created", "probe.tick"]
    }
    fn migrations(&self) -> Option<&'static Migrator> {
        Some(&MIGRATIONS)
    }
    fn routes(&self, routes: &mut Routes) {
        routes
            .config()
            .app_data(web::Data::new(self.slow_started.clone()));
        routes
            .add(Endpoint::at("/notes").post(create_note))
            .add(Endpoint::at("/notes/{id}").get(get_note))
            .add(Endpoint::at("/slow").get(slow))
            .add(Endpoint::at("/boom").get(boom))
            .add(Endpoint::at("/me").get(whoami))
            .add(Endpoint::at("/moderate").post(moderate));
    }
    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <ProbeApi as utoipa::OpenApi>::openapi()
    }
    fn subscribers(&self, _platform: &Platform) -> Vec<Arc<dyn Subscriber>> {
        let fails = self.subscriber_fails.clone();
        vec![subscriber_fn(
            "probe.record",
            &["probe.*"],
            move |event, conn| {
                let fails = fails.load(Ordering::SeqCst);
                Box::pin(async move {
                    anyhow::ensure!(!fails, "told to fail");
                    sqlx::query("INSERT INTO probe.seen (event_id, event_type) VALUES ($1, $2)")
                        .bind(event.id)
                        .bind(&event.event_type)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            },
        )]
    }
    fn jobs(&self, _platform: &Platform) -> Vec<Job> {
        let (hangs, stuck) = (self.job_hangs.clone(), self.job_stuck.clone());
        vec![Job::new(
            "probe.job",
            Duration::from_millis(50),
            move || {
                let (hangs, stuck) = (hangs.clone(), stuck.clone());
                Box::pin(async move {
                    if hangs.load(Ordering::SeqCst) {
                        stuck.store(true, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Ok(())
                })
            },
        )]
    }
    fn health_checks(&self, platform: &Platform) -> Vec<HealthCheck> {
        let pool = platform.db.clone();
        vec![HealthCheck::new("probe:notes", true, move || {
            let pool = pool.clone();
            Box::pin(async move {
                sqlx::query("SELECT 1 FROM probe.notes LIMIT 1")
                    .execute(&pool)
                    .await?;
                Ok(())
            })
        })]
    }
}
