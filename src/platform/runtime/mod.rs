//! Runtime settings: values administrators change without a restart (commission rate, tax
//! rates, cart lifetime, review moderation, limits).
//!
//! A setting is declared once by the code that owns it, with its namespace (the domain, or
//! `platform`), key, type, validation and default (its TOML value), and read through a typed
//! handle that costs a read lock and an `Arc` clone. Changes go to
//! `platform.runtime_settings` in the caller's transaction, together with the audit record;
//! a trigger sends `NOTIFY basalt_settings` at commit, which wakes the refresh job of every
//! replica, so every replica applies a change within a second (a poll catches a missed
//! notification). A stored value that no longer validates (a setting tightened by a new
//! release) is ignored with a warning and the default applies.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};

mod repo;

use crate::platform::audit::{self, AuditEntry};
use crate::platform::error::{ApiError, FieldError};
use crate::platform::jobs::Job;

/// The NOTIFY channel the trigger on `platform.runtime_settings` uses.
pub const CHANNEL: &str = "basalt_settings";

/// How often replicas re-read every setting even without a notification.
const POLL: Duration = Duration::from_secs(30);

type Validator<T> = fn(&T) -> Result<(), String>;

/// One setting's current value, typed.
pub struct Setting<T> {
    namespace: &'static str,
    key: &'static str,
    default: Arc<T>,
    validate: Validator<T>,
    current: RwLock<Arc<T>>,
}

impl<T> Setting<T> {
    /// The value in force now.
    pub fn get(&self) -> Arc<T> {
        self.current
            .read()
            .map(|v| v.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }
}

/// What the store needs of a setting without knowing its type.
trait AnySetting: Send + Sync {
    fn name(&self) -> (&'static str, &'static str);
    fn check(&self, value: &serde_json::Value) -> Result<(), String>;
    /// Applies a stored value, or the default when none is stored (or it no longer fits).
    fn apply(&self, value: Option<&serde_json::Value>);
}

impl<T: DeserializeOwned + Send + Sync + 'static> AnySetting for Setting<T> {
    fn name(&self) -> (&'static str, &'static str) {
        (self.namespace, self.key)
    }

    fn check(&self, value: &serde_json::Value) -> Result<(), String> {
        let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        (self.validate)(&typed)
    }

    fn apply(&self, value: Option<&serde_json::Value>) {
        let next = match value.map(|v| (serde_json::from_value::<T>(v.clone()), v)) {
            None => self.default.clone(),
            Some((Ok(typed), _)) if (self.validate)(&typed).is_ok() => Arc::new(typed),
            Some((_, raw)) => {
                tracing::warn!(
                    setting = format!("{}.{}", self.namespace, self.key),
                    value = %raw,
                    "stored runtime setting no longer validates; the default applies"
                );
                self.default.clone()
            }
        };
        match self.current.write() {
            Ok(mut slot) => *slot = next,
            Err(e) => *e.into_inner() = next,
        }
    }
}

/// Every declared setting of this process, and their stored values.
#[derive(Clone)]
pub struct RuntimeSettings {
    db: PgPool,
    settings: Arc<RwLock<Vec<Arc<dyn AnySetting>>>>,
}

impl RuntimeSettings {
    pub fn new(db: PgPool) -> Self {
        Self {
            db,
            settings: Arc::default(),
        }
    }

    /// Declares a setting with its default (the TOML value) and validation, and returns the
    /// handle its owner reads. Call from `Domain::init` (or the kernel's start-up); the
    /// stored value, if any, applies from the first refresh.
    pub fn declare<T>(
        &self,
        namespace: &'static str,
        key: &'static str,
        default: T,
        validate: Validator<T>,
    ) -> Arc<Setting<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let default = Arc::new(default);
        let setting = Arc::new(Setting {
            namespace,
            key,
            current: RwLock::new(default.clone()),
            default,
            validate,
        });
        self.settings
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(setting.clone());
        setting
    }

    fn find(&self, namespace: &str, key: &str) -> Option<Arc<dyn AnySetting>> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|s| s.name() == (namespace, key))
            .cloned()
    }

    /// Re-reads every stored value and applies it (the default where none is stored).
    pub async fn refresh(&self) -> Result<(), sqlx::Error> {
        let rows = repo::all(&self.db).await?;
        let stored: HashMap<(String, String), serde_json::Value> = rows
            .into_iter()
            .map(|r| ((r.namespace, r.key), r.value))
            .collect();
        let settings = self
            .settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for s in settings {
            let (ns, key) = s.name();
            s.apply(stored.get(&(ns.to_owned(), key.to_owned())));
        }
        Ok(())
    }

    /// Stores a new value on the caller's connection (inside its transaction), after the
    /// owner's validation, and records it in the audit trail with the value it replaced. An
    /// unknown setting is a 404; a value that does not fit is a 422 naming `value`. The
    /// change applies on every replica once the transaction commits.
    pub async fn set<V: Serialize>(
        &self,
        conn: &mut PgConnection,
        namespace: &str,
        key: &str,
        value: &V,
        actor: &str,
    ) -> Result<(), ApiError> {
        let setting = self
            .find(namespace, key)
            .ok_or_else(|| ApiError::not_found(format!("No runtime setting {namespace}.{key}.")))?;
        let value = serde_json::to_value(value).map_err(ApiError::internal)?;
        setting.check(&value).map_err(|message| {
            ApiError::validation(vec![FieldError {
                field: "value".into(),
                code: "invalid".into(),
                message,
            }])
        })?;
        let before = repo::upsert(conn, namespace, key, &value, actor).await?;
        audit::record(
            conn,
            &AuditEntry {
                actor,
                action: "settings.changed",
                object_type: "runtime_setting",
                object_id: &format!("{namespace}.{key}"),
                before: before.as_ref(),
                after: Some(&value),
            },
        )
        .await?;
        Ok(())
    }

    /// The job that applies changes: woken by the trigger's NOTIFY, polling as a fallback.
    pub fn job(&self) -> Job {
        let store = self.clone();
        Job::new("runtime_settings.refresh", POLL, move || {
            let store = store.clone();
            Box::pin(async move {
                store.refresh().await?;
                Ok(())
            })
        })
        .woken_by(CHANNEL)
    }
}
