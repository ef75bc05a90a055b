//! How a dependency that is down is logged: once when it goes, then a summary at most every
//! `every` (how many more errors, the latest one), and once when it is back. librdkafka
//! reports a broker it cannot reach on every reconnect of every client, and the mirror on
//! every retry: logged as they come, an outage of a minute is hundreds of lines that bury
//! everything else. `/health` says `degraded` for as long as it lasts.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What to log, decided by [`OutageLog`]; the caller writes it (so tests can read it).
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The first error of an outage.
    Down(String),
    /// `errors` more since the last line, over `lasted` so far; `latest` is the newest.
    StillDown {
        errors: u64,
        lasted: Duration,
        latest: String,
    },
    /// It works again, after `lasted`.
    Back { lasted: Duration },
}

#[derive(Default)]
struct State {
    since: Option<Instant>,
    last_line: Option<Instant>,
    suppressed: u64,
}

pub struct OutageLog {
    every: Duration,
    state: Mutex<State>,
}

impl OutageLog {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::default(),
        }
    }

    /// An error: the line to log now, if any.
    pub fn failed(&self, error: impl Into<String>, now: Instant) -> Option<Line> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(since) = s.since else {
            *s = State {
                since: Some(now),
                last_line: Some(now),
                suppressed: 0,
            };
            return Some(Line::Down(error.into()));
        };
        s.suppressed += 1;
        if s.last_line
            .is_none_or(|at| now.duration_since(at) >= self.every)
        {
            let errors = std::mem::take(&mut s.suppressed);
            s.last_line = Some(now);
            return Some(Line::StillDown {
                errors,
                lasted: now.duration_since(since),
                latest: error.into(),
            });
        }
        None
    }

    /// A success: the line to log if this ends an outage.
    pub fn succeeded(&self, now: Instant) -> Option<Line> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let since = s.since?;
        *s = State::default();
        Some(Line::Back {
            lasted: now.duration_since(since),
        })
    }

    /// Whether an outage is going on.
    pub fn down(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .since
            .is_some()
    }

    /// Logs `line` about `what` (e.g. "Kafka") as a warning (or info, when it is back).
    pub fn log(what: &str, line: Line) {
        match line {
            Line::Down(error) => tracing::warn!(
                %error,
                "{what} is unreachable; events wait in the outbox (further errors are summarised once a minute)"
            ),
            Line::StillDown {
                errors,
                lasted,
                latest,
            } => tracing::warn!(
                errors,
                down_for_secs = lasted.as_secs(),
                latest = %latest,
                "{what} is still unreachable"
            ),
            Line::Back { lasted } => {
                tracing::info!(
                    down_for_secs = lasted.as_secs(),
                    "{what} is reachable again"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_one_line_then_a_summary_per_interval_then_one_line() {
        let log = OutageLog::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(
            log.failed("refused", t0),
            Some(Line::Down("refused".into()))
        );
        assert!(log.down());
        for i in 1..=100 {
            assert_eq!(
                log.failed("refused", t0 + Duration::from_millis(i * 500)),
                None
            );
        }
        assert_eq!(
            log.failed("timed out", t0 + Duration::from_secs(61)),
            Some(Line::StillDown {
                errors: 101,
                lasted: Duration::from_secs(61),
                latest: "timed out".into()
            })
        );
        assert_eq!(log.failed("refused", t0 + Duration::from_secs(62)), None);
        assert_eq!(
            log.succeeded(t0 + Duration::from_secs(70)),
            Some(Line::Back {
                lasted: Duration::from_secs(70)
            })
        );
        assert!(!log.down());
        assert_eq!(log.succeeded(t0 + Duration::from_secs(71)), None);
        assert_eq!(
            log.failed("again", t0 + Duration::from_secs(72)),
            Some(Line::Down("again".into()))
        );
    }
}
