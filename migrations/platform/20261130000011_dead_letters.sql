-- Events the dispatcher gave up on (dispatch_failed) are dead letters: kept past the
-- retention until staff replay them, counted on /health and /metrics. This index keeps
-- those counts and the staff list cheap however large the outbox grows.
CREATE INDEX outbox_dead_letters ON platform.outbox (id) WHERE dispatch_failed;
