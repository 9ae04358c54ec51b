-- Lineage of each model version, and the identity that makes registration idempotent.
-- fingerprint: sha256 over the symbol, model type, horizon, training settings and the modelling
-- table the version was trained and evaluated on. Registering the same fingerprint again (a demo
-- run twice, a run re-executed after a later step failed) returns the existing version and writes
-- nothing. Versions registered before this migration have no fingerprint and never match.

ALTER TABLE model_registry
    ADD COLUMN horizon      integer CHECK (horizon IS NULL OR horizon >= 1),
    ADD COLUMN fingerprint  text CHECK (fingerprint IS NULL OR fingerprint ~ '^[0-9a-f]{64}$'),
    ADD COLUMN run_id       text,
    ADD COLUMN data_start   timestamptz,
    ADD COLUMN data_end     timestamptz,
    ADD CONSTRAINT model_registry_data_window CHECK (
        data_start IS NULL OR data_end IS NULL OR data_start <= data_end);

CREATE UNIQUE INDEX model_registry_symbol_fingerprint
    ON model_registry (symbol, fingerprint) WHERE fingerprint IS NOT NULL;
