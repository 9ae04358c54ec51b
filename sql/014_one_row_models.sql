-- A row-wise model's one-row prediction as plain arrays (brain_assets.training.fast_predict):
-- an npz file without pickle, written at registration beside the artifact, with its own sha256
-- checked on load. load_predictor then gives the engine a model without importing scikit-learn
-- (about a second of a fresh process). NULL for the LSTM, for a model the compiler does not know,
-- and for versions registered before this migration: those load from the artifact as before.
ALTER TABLE model_registry
    ADD COLUMN one_row bytea,
    ADD COLUMN one_row_sha256 text,
    ADD CONSTRAINT model_registry_one_row_checked CHECK (
        (one_row IS NULL) = (one_row_sha256 IS NULL)
        AND (one_row_sha256 IS NULL OR one_row_sha256 ~ '^[0-9a-f]{64}$'));
