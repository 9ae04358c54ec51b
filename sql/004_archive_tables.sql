-- Retention: rows past the retention window move here (brain_assets.store.maintenance) so that the
-- live tables and their indexes stay small while the history is kept.
-- The columns mirror the live tables; the maintenance code checks that they still do before it
-- moves anything, so a later migration that adds a live column must add it here too.
-- No foreign keys or checks (the rows were checked on their way into the live tables), and the
-- ids are the live rows' own, not regenerated, so that an archived row can be traced back.

CREATE TABLE model_metrics_archive (
    id                bigint PRIMARY KEY,
    model_id          text NOT NULL,
    symbol            text NOT NULL,
    metric            text NOT NULL,
    value             double precision NOT NULL,
    evaluation_date   timestamptz NOT NULL,
    regime            text,
    periods_per_year  double precision,
    archived_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX model_metrics_archive_date ON model_metrics_archive (evaluation_date);

CREATE TABLE feature_importance_archive (
    id              bigint PRIMARY KEY,
    symbol          text NOT NULL,
    model_id        text NOT NULL,
    method          text NOT NULL,
    feature         text NOT NULL,
    importance      double precision NOT NULL,
    rank            integer NOT NULL,
    analysis_date   timestamptz NOT NULL,
    archived_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX feature_importance_archive_date ON feature_importance_archive (analysis_date);

CREATE TABLE data_quality_logs_archive (
    id              bigint PRIMARY KEY,
    symbol          text NOT NULL,
    check_name      text NOT NULL,
    severity        text NOT NULL,
    passed          boolean NOT NULL,
    failure_count   integer NOT NULL,
    details         jsonb NOT NULL,
    "timestamp"     timestamptz NOT NULL,
    archived_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX data_quality_logs_archive_time ON data_quality_logs_archive ("timestamp");
