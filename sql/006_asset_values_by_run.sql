-- Asset values per run: a run's writes never overwrite another run's, and a run reads only the
-- values it wrote itself or the published ones (issue 11).
--
-- A row is the value one run wrote for one (asset, partition); run_id '' marks a write made
-- outside any run (a script, a test), which is published as it is written. `published` marks
-- the value that every other reader gets: the latest value written by a run that completed
-- successfully, at most one per (asset, partition). A run's rows stay unpublished while it runs;
-- publishing them when it succeeds removes the published rows they supersede. Unpublished rows
-- of runs that failed stay readable to a re-execution of that run until they are pruned.
-- The rows stored so far become the published values of the runs that wrote them.

ALTER TABLE asset_values DROP CONSTRAINT asset_values_pkey;

UPDATE asset_values SET run_id = '' WHERE run_id IS NULL;

ALTER TABLE asset_values
    ALTER COLUMN run_id SET DEFAULT '',
    ALTER COLUMN run_id SET NOT NULL,
    ADD COLUMN published boolean NOT NULL DEFAULT true;

ALTER TABLE asset_values ALTER COLUMN published SET DEFAULT false;

ALTER TABLE asset_values RENAME COLUMN updated_at TO written_at;

ALTER TABLE asset_values ADD PRIMARY KEY (asset_key, partition_key, run_id);

CREATE UNIQUE INDEX asset_values_one_published
    ON asset_values (asset_key, partition_key) WHERE published;

CREATE INDEX asset_values_unpublished_by_run
    ON asset_values (run_id) WHERE NOT published;
