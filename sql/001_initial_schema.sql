-- The Brain store: model registry, activation history, metrics, feature importance, data quality.
-- Applied once, inside one transaction, by brain_assets.store.migrations.

CREATE TABLE model_registry (
    model_id          text PRIMARY KEY CHECK (btrim(model_id) <> ''),
    symbol            text NOT NULL CHECK (btrim(symbol) <> ''),
    version           integer NOT NULL CHECK (version >= 1),
    model_type        text NOT NULL CHECK (btrim(model_type) <> ''),
    hyperparameters   jsonb NOT NULL DEFAULT '{}'::jsonb,
    feature_names     text[] NOT NULL DEFAULT '{}',
    training_start    timestamptz,
    training_end      timestamptz,
    artifact          bytea NOT NULL,
    artifact_sha256   text NOT NULL CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
    artifact_format   text NOT NULL DEFAULT 'bytes',
    metrics           jsonb NOT NULL DEFAULT '{}'::jsonb,
    composite_score   double precision
        CHECK (composite_score IS NULL OR composite_score NOT IN ('NaN', 'Infinity', '-Infinity')),
    is_active         boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT model_registry_symbol_version_key UNIQUE (symbol, version),
    -- Target of the composite foreign keys below: a metric or an importance row cannot name a
    -- model of another symbol.
    CONSTRAINT model_registry_model_symbol_key UNIQUE (model_id, symbol),
    CONSTRAINT model_registry_training_window CHECK (
        training_start IS NULL OR training_end IS NULL OR training_start <= training_end)
);

-- The last defence of "at most one active version per symbol"; writers also serialise per symbol
-- with an advisory lock so that they never reach it in normal operation.
CREATE UNIQUE INDEX model_registry_one_active_per_symbol
    ON model_registry (symbol) WHERE is_active;

CREATE INDEX model_registry_symbol_score
    ON model_registry (symbol, composite_score DESC NULLS LAST, version DESC);

CREATE TABLE model_activations (
    activation_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol          text NOT NULL,
    model_id        text NOT NULL,
    version         integer NOT NULL,
    action          text NOT NULL CHECK (action IN ('activated', 'deactivated', 'kept_inactive', 'warning')),
    reason          text NOT NULL CHECK (btrim(reason) <> ''),
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    FOREIGN KEY (model_id, symbol) REFERENCES model_registry (model_id, symbol)
);

CREATE INDEX model_activations_symbol_time ON model_activations (symbol, created_at DESC);
-- Baselines and "previous good version" look up a model's own activations on every check.
CREATE INDEX model_activations_model_action ON model_activations (model_id, action, activation_id);

CREATE TABLE model_metrics (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id          text NOT NULL,
    symbol            text NOT NULL,
    metric            text NOT NULL CHECK (btrim(metric) <> ''),
    value             double precision NOT NULL CHECK (value NOT IN ('NaN', 'Infinity', '-Infinity')),
    -- now(): rows written without a date share their transaction's time (clock_timestamp()
    -- would give each row of one COPY its own time and split an evaluation in pieces).
    evaluation_date   timestamptz NOT NULL DEFAULT now(),
    regime            text CHECK (regime IN ('low', 'normal', 'high', 'extreme')),
    periods_per_year  double precision CHECK (periods_per_year IS NULL OR periods_per_year > 0)
);

CREATE INDEX model_metrics_model_date ON model_metrics (model_id, evaluation_date DESC);

CREATE TABLE feature_importance (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol          text NOT NULL,
    model_id        text NOT NULL,
    method          text NOT NULL CHECK (btrim(method) <> ''),
    feature         text NOT NULL CHECK (btrim(feature) <> ''),
    importance      double precision NOT NULL CHECK (importance NOT IN ('NaN', 'Infinity', '-Infinity')),
    rank            integer NOT NULL CHECK (rank >= 1),
    analysis_date   timestamptz NOT NULL DEFAULT now()
);

-- "Latest analysis of a symbol" (a method filter is applied while walking it: the latest
-- dates hold every method of an analysis).
CREATE INDEX feature_importance_symbol_date ON feature_importance (symbol, analysis_date DESC);
-- One row per feature in one analysis; also "latest analysis of this model" and the lookup of
-- that analysis' rows.
CREATE UNIQUE INDEX feature_importance_analysis_feature
    ON feature_importance (symbol, model_id, analysis_date DESC, method, feature);

CREATE TABLE data_quality_logs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol          text NOT NULL CHECK (btrim(symbol) <> ''),
    check_name      text NOT NULL CHECK (btrim(check_name) <> ''),
    severity        text NOT NULL CHECK (severity IN ('INFO', 'WARN', 'ERROR')),
    passed          boolean NOT NULL,
    failure_count   integer NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    "timestamp"     timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX data_quality_logs_time ON data_quality_logs ("timestamp");
CREATE INDEX data_quality_logs_symbol_time ON data_quality_logs (symbol, "timestamp" DESC);

-- Metric and importance rows may only name a model registered for their symbol. The check runs
-- once per statement over all inserted rows (one query per COPY) instead of once per row as a
-- foreign key would: a model version's 150 metric and importance rows cost one lookup.
-- Registry rows that such rows reference cannot be deleted. (The platform never deletes
-- registry rows; unlike a foreign key this does not lock the row against a concurrent delete.)

CREATE FUNCTION brain_check_model_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    orphan record;
BEGIN
    SELECT n.model_id, n.symbol INTO orphan FROM new_rows n
    WHERE NOT EXISTS (SELECT 1 FROM model_registry r
                      WHERE r.model_id = n.model_id AND r.symbol = n.symbol)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = format('%s: model %L is not registered for symbol %L',
                             TG_TABLE_NAME, orphan.model_id, orphan.symbol);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER model_metrics_model_refs_insert AFTER INSERT ON model_metrics
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION brain_check_model_refs();
CREATE TRIGGER model_metrics_model_refs_update AFTER UPDATE ON model_metrics
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION brain_check_model_refs();
CREATE TRIGGER feature_importance_model_refs_insert AFTER INSERT ON feature_importance
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION brain_check_model_refs();
CREATE TRIGGER feature_importance_model_refs_update AFTER UPDATE ON feature_importance
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION brain_check_model_refs();

CREATE FUNCTION brain_protect_referenced_models() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM model_metrics WHERE model_id = OLD.model_id)
       OR EXISTS (SELECT 1 FROM feature_importance
                  WHERE symbol = OLD.symbol AND model_id = OLD.model_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = format('model %L still has metrics or importance rows', OLD.model_id);
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER model_registry_protect_referenced BEFORE DELETE ON model_registry
    FOR EACH ROW EXECUTE FUNCTION brain_protect_referenced_models();
