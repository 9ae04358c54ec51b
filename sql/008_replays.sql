-- Replays of the daily loop (brain replay): one row per replay, one per step. Steps name the
-- versions of the replay's own Brain, which may be another database, so they carry no foreign
-- key; they are a record of what the policy decided, kept after the replay's models are gone.
CREATE TABLE replay_runs (
    replay_id   text PRIMARY KEY CHECK (btrim(replay_id) <> ''),
    symbol      text NOT NULL CHECK (btrim(symbol) <> ''),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    parameters  jsonb NOT NULL DEFAULT '{}'::jsonb,
    summary     jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE replay_steps (
    replay_id       text NOT NULL REFERENCES replay_runs (replay_id) ON DELETE CASCADE,
    step            integer NOT NULL CHECK (step >= 0),
    as_of           timestamptz NOT NULL,
    active_model_id text,
    active_version  integer,
    active_type     text,
    period_return   double precision NOT NULL DEFAULT 0
                    CHECK (period_return = period_return AND abs(period_return) < 'infinity'),
    live            jsonb NOT NULL DEFAULT '{}'::jsonb,
    events          jsonb NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (replay_id, step)
);
