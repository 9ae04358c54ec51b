-- Alerts on their way to the webhook (brain_assets.alerts). A rollback writes its alert here in
-- the same transaction as the rollback itself, so that a crash right after the commit cannot
-- lose it; deliver_pending posts the rows that are due and records every attempt.
--
-- A row is pending while next_attempt_at is set; delivering it (delivered_at) or giving up on it
-- (gave_up_at: too many failed attempts, a refusal, or too old) clears next_attempt_at.
CREATE TABLE alert_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind            text NOT NULL CHECK (btrim(kind) <> ''),
    symbol          text,
    payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    next_attempt_at timestamptz DEFAULT clock_timestamp(),
    delivered_at    timestamptz,
    gave_up_at      timestamptz,
    CHECK (delivered_at IS NULL OR gave_up_at IS NULL),
    CHECK ((next_attempt_at IS NULL) = (delivered_at IS NOT NULL OR gave_up_at IS NOT NULL))
);

-- The delivery loop only ever looks for pending rows that are due.
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at, id)
    WHERE next_attempt_at IS NOT NULL;
