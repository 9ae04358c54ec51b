-- Alerts written once per cause, and alerts an operator sent again (brain_assets.alerts).
--
-- dedupe_key: an alert whose cause can be seen more than once (the run-failure sensor may
-- evaluate the same failed run twice, after a crash of its tick) carries the cause's identity
-- (the run_id); a second alert of the same kind with the same key is not written. Alerts without
-- a key (rollbacks: each is its own cause) are never deduplicated.
--
-- retried_at: the last `brain alerts retry` of the alert. Alerts are given up once they are older
-- than the maximum age; the age counts from the retry when there was one, so that an alert an
-- operator sends again gets a full window of attempts rather than being given up at once.
ALTER TABLE alert_outbox
    ADD COLUMN dedupe_key text CHECK (dedupe_key IS NULL OR btrim(dedupe_key) <> ''),
    ADD COLUMN retried_at timestamptz;

CREATE UNIQUE INDEX alert_outbox_dedupe ON alert_outbox (kind, dedupe_key)
    WHERE dedupe_key IS NOT NULL;
