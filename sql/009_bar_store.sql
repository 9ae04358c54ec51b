-- The bar store: OHLCV bars per (source, symbol, timeframe), and the provenance of every batch
-- that wrote them (an exchange fetch or a file import). Bars are upserted: importing the same
-- bars again adds nothing, a bar whose values changed is overwritten and counted as changed.
-- The store keeps what the source sent (a zero price or high < low is kept); the retrain's
-- cleaning policy deals with bad prints. Only non-finite numbers are refused.
CREATE TABLE bar_batches (
    batch_id      bigserial PRIMARY KEY,
    source        text NOT NULL CHECK (btrim(source) <> ''),
    symbol        text NOT NULL CHECK (btrim(symbol) <> ''),
    timeframe     text NOT NULL CHECK (btrim(timeframe) <> ''),
    fetched_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    first_bar     timestamptz NOT NULL,
    last_bar      timestamptz NOT NULL,
    rows_received integer NOT NULL CHECK (rows_received >= 0),
    rows_new      integer NOT NULL CHECK (rows_new >= 0),
    rows_changed  integer NOT NULL CHECK (rows_changed >= 0),
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT bar_batches_range CHECK (first_bar <= last_bar),
    CONSTRAINT bar_batches_counts CHECK (rows_new + rows_changed <= rows_received)
);

-- A series' batches (latest fetch, inventory's last_batch_at).
CREATE INDEX bar_batches_series ON bar_batches (source, symbol, timeframe, fetched_at DESC);

CREATE TABLE bars (
    source     text NOT NULL CHECK (btrim(source) <> ''),
    symbol     text NOT NULL CHECK (btrim(symbol) <> ''),
    timeframe  text NOT NULL CHECK (btrim(timeframe) <> ''),
    open_time  timestamptz NOT NULL CHECK (isfinite(open_time)),
    open       double precision NOT NULL CHECK (open = open AND abs(open) < 'infinity'),
    high       double precision NOT NULL CHECK (high = high AND abs(high) < 'infinity'),
    low        double precision NOT NULL CHECK (low = low AND abs(low) < 'infinity'),
    close      double precision NOT NULL CHECK (close = close AND abs(close) < 'infinity'),
    volume     double precision NOT NULL CHECK (volume = volume AND abs(volume) < 'infinity'),
    -- The batch that last wrote the bar's values (an unchanged re-import does not rewrite it).
    -- No index on it: batches are never deleted, and one would slow every import.
    batch_id   bigint NOT NULL REFERENCES bar_batches (batch_id),
    -- Serves the upsert and every range read of one series (open_time within the series).
    PRIMARY KEY (source, symbol, timeframe, open_time)
);
