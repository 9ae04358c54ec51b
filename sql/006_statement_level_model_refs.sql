-- Metric and importance rows still may only name a model registered for their symbol, but the
-- check now runs once per statement over all inserted rows (one query per COPY) instead of once
-- per row: a model version's 150 metric and importance rows cost one lookup, not 150.
-- Registry rows that such rows reference cannot be deleted. (The platform never deletes
-- registry rows; unlike a foreign key this does not lock the registry row against a concurrent
-- delete.)

ALTER TABLE model_metrics DROP CONSTRAINT model_metrics_model_id_symbol_fkey;
ALTER TABLE feature_importance DROP CONSTRAINT feature_importance_model_id_symbol_fkey;

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

-- Rows written without an explicit date share their transaction's time (clock_timestamp()
-- would give each row of one COPY a different time and split an analysis in pieces).
ALTER TABLE model_metrics ALTER COLUMN evaluation_date SET DEFAULT now();
ALTER TABLE feature_importance ALTER COLUMN analysis_date SET DEFAULT now();
