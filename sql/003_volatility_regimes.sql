-- The volatility regime of every classified bar of a symbol (brain_assets.regimes.classify), so
-- that the model selector and the dashboards read the current regime without recomputing it.
-- A bar's row is rewritten when the bars are classified again; updated_at says when its values
-- last changed.
CREATE TABLE volatility_regimes (
    symbol          text NOT NULL CHECK (btrim(symbol) <> ''),
    bar_time        timestamptz NOT NULL,
    regime          text NOT NULL CHECK (regime IN ('low', 'normal', 'high', 'extreme')),
    -- NaN sorts above every number in PostgreSQL, so ">= 0" alone would let it in.
    realized_vol    double precision NOT NULL
        CHECK (realized_vol >= 0 AND realized_vol NOT IN ('NaN', 'Infinity')),
    vol_percentile  double precision NOT NULL
        CHECK (vol_percentile >= 0 AND vol_percentile <= 1),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Also the index of "latest regime of a symbol" (ORDER BY bar_time DESC LIMIT 1 walks it
    -- backwards) and of a symbol's history over a time range; a second (symbol, bar_time DESC)
    -- index would only duplicate it.
    CONSTRAINT volatility_regimes_pkey PRIMARY KEY (symbol, bar_time)
);

-- The selector reads the per-regime metrics of all of a symbol's models at once, which the
-- (model_id, evaluation_date) index cannot serve.
CREATE INDEX model_metrics_symbol_regime
    ON model_metrics (symbol, model_id, evaluation_date DESC)
    WHERE regime IS NOT NULL;
