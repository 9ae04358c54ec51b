-- Values that Dagster assets hand to each other (OHLCV frames, feature sets, trained artifacts),
-- one row per (asset, partition). Keys are stored verbatim, so 'BTC' and 'BTC/USDT' never collide
-- as they do as paths in a filesystem IO manager.
CREATE TABLE asset_values (
    asset_key       text NOT NULL CHECK (btrim(asset_key) <> ''),
    partition_key   text NOT NULL DEFAULT '',
    format          text NOT NULL CHECK (format IN ('parquet', 'json')),
    value           bytea NOT NULL,
    run_id          text,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (asset_key, partition_key)
);
