-- The honest gate's records.
--
-- 1. Every metric row says which bars it was measured on. ``segment``: 'evaluation' (the
--    out-of-sample record a version was registered with, overall or per regime), 'fold' (one
--    walk-forward fold of it, numbered by ``fold``), 'live' (monitoring: bars the version never
--    saw). ``window_start`` / ``window_end`` bound the bars when known. Before this migration
--    live rows were indistinguishable from the evaluation's, so that "the latest metrics" of a
--    monitored version, and the baseline of its next activation, could be a live window: rows
--    that were not written with their version's registration (a different evaluation_date) and
--    carry no regime were written by monitoring, and are labelled 'live' here.
ALTER TABLE model_metrics
    ADD COLUMN segment text NOT NULL DEFAULT 'evaluation'
        CHECK (segment IN ('evaluation', 'fold', 'live')),
    ADD COLUMN fold integer CHECK (fold IS NULL OR fold >= 0),
    ADD COLUMN window_start timestamptz,
    ADD COLUMN window_end timestamptz,
    ADD CONSTRAINT model_metrics_fold_segment CHECK ((fold IS NULL) = (segment <> 'fold'));

UPDATE model_metrics m SET segment = 'live'
FROM model_registry r
WHERE m.model_id = r.model_id AND m.regime IS NULL AND m.evaluation_date <> r.created_at;

CREATE INDEX model_metrics_model_segment_date
    ON model_metrics (model_id, segment, evaluation_date DESC);

-- Retention moves rows column for column: the archive keeps the same columns.
ALTER TABLE model_metrics_archive
    ADD COLUMN segment text NOT NULL DEFAULT 'evaluation',
    ADD COLUMN fold integer,
    ADD COLUMN window_start timestamptz,
    ADD COLUMN window_end timestamptz;

-- 2. What a version's inputs looked like when it was trained: per feature, the bin edges of its
--    training rows and the share of rows in each bin (see pipeline.drift). Monitoring compares
--    the live bars' features with it. NULL for versions registered before.
ALTER TABLE model_registry ADD COLUMN feature_profile jsonb;

-- 3. One row per monitoring check of a version's inputs: the Population Stability Index of each
--    feature over the live window against the training profile (``psi``), the largest index a
--    window of the same length reached within the training rows (``ceilings``), and how many
--    features are above both the deployment's threshold and their ceiling (see features.drift).
CREATE TABLE input_drift (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol            text NOT NULL,
    model_id          text NOT NULL,
    checked_at        timestamptz NOT NULL DEFAULT now(),
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    bars              integer NOT NULL CHECK (bars > 0),
    max_psi           double precision NOT NULL CHECK (max_psi >= 0 AND max_psi < 'infinity'),
    drifted_features  integer NOT NULL CHECK (drifted_features >= 0),
    threshold         double precision NOT NULL CHECK (threshold > 0),
    flagged           boolean NOT NULL,
    psi               jsonb NOT NULL,
    ceilings          jsonb NOT NULL DEFAULT '{}'::jsonb,
    FOREIGN KEY (model_id, symbol) REFERENCES model_registry (model_id, symbol),
    CHECK (window_start <= window_end)
);

CREATE INDEX input_drift_symbol_time ON input_drift (symbol, checked_at DESC);

CREATE TABLE input_drift_archive (
    id                bigint PRIMARY KEY,
    symbol            text NOT NULL,
    model_id          text NOT NULL,
    checked_at        timestamptz NOT NULL,
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,
    bars              integer NOT NULL,
    max_psi           double precision NOT NULL,
    drifted_features  integer NOT NULL,
    threshold         double precision NOT NULL,
    flagged           boolean NOT NULL,
    psi               jsonb NOT NULL,
    ceilings          jsonb NOT NULL DEFAULT '{}'::jsonb,
    archived_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX input_drift_archive_date ON input_drift_archive (checked_at);

-- 4. A replay step records what holding the symbol earned over the same bars as the version
--    that traded, the benchmark a policy is judged against besides standing aside (0).
ALTER TABLE replay_steps
    ADD COLUMN hold_return double precision NOT NULL DEFAULT 0
        CHECK (hold_return = hold_return AND abs(hold_return) < 'infinity');
