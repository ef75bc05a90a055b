//! Counts the SQL round trips each request makes, so a hot path that grows a statement
//! fails a test instead of a benchmark.
//!
//! The application logs every statement at debug under the `sqlx::query` target
//! (`platform::db`), inside the request's `http` span, which carries the request id. A
//! tracing layer installed once per test process files each statement under the request id
//! of the span it ran in; a test reads the list for one response through its `x-request-id`.
//!
//! What a round trip is here: each statement sqlx executes (COMMIT and ROLLBACK included),
//! plus one for the `BEGIN` of every transaction that ended (sqlx sends `BEGIN` — and a
//! `BEGIN; SET LOCAL ...` — without logging it, so it is counted from the transaction's end).
//! Not counted: the one-off `Parse` the first time a connection meets a statement (sqlx then
//! caches it), and the ping sqlx sends when a connection returns to the pool (off the
//! request's path). The pool pings nothing on acquire (`test_before_acquire(false)`).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Subscriber, span};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, filter};

/// Statements seen per request id, in order.
static SEEN: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();

fn seen() -> &'static Mutex<HashMap<String, Vec<String>>> {
    SEEN.get_or_init(Default::default)
}

/// Installs the counting layer (and, with `TEST_LOG`, the usual log output) as the process's
/// subscriber; later calls do nothing.
pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let counter = Counter.with_filter(filter::filter_fn(|m| {
            m.target() == "sqlx::query" || (m.is_span() && m.name() == "http")
        }));
        let log = std::env::var("TEST_LOG").is_ok().then(|| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        });
        let _ = tracing_subscriber::registry()
            .with(counter)
            .with(log)
            .try_init();
    });
}

/// The statements the request behind `res` ran, in order (by their first words).
pub fn of(res: &reqwest::Response) -> Vec<String> {
    let id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("the response carries x-request-id");
    seen()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .cloned()
        .unwrap_or_default()
}

/// The round trips of the request behind `res`: its statements, plus one `BEGIN` per
/// transaction that ended (see the module's note).
pub fn round_trips(res: &reqwest::Response) -> usize {
    let statements = of(res);
    let begins = statements
        .iter()
        .filter(|s| {
            let s = s.trim_start().to_ascii_uppercase();
            s.starts_with("COMMIT") || s.starts_with("ROLLBACK")
        })
        .count();
    statements.len() + begins
}

struct RequestId(String);

struct Counter;

/// Takes one field's value by name.
struct Grab {
    name: &'static str,
    value: Option<String>,
}

impl Visit for Grab {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == self.name {
            self.value = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == self.name {
            self.value = Some(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Counter {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut grab = Grab {
            name: "request_id",
            value: None,
        };
        attrs.record(&mut grab);
        if let (Some(request), Some(span)) = (grab.value, ctx.span(id)) {
            span.extensions_mut().insert(RequestId(request));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(request) = scope
            .from_root()
            .find_map(|span| span.extensions().get::<RequestId>().map(|r| r.0.clone()))
        else {
            return;
        };
        let mut grab = Grab {
            name: "summary",
            value: None,
        };
        event.record(&mut grab);
        seen()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(request)
            .or_default()
            .push(grab.value.unwrap_or_default());
    }
}
