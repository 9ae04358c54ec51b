-- Where each version's bars came from. Until now a symbol the bar store lacked trained on
-- synthetic bars without a trace in the registry, and such a version could pass the floor and
-- trade. ``bar_source`` names the source ('store:<exchange>', 'files', 'synthetic'),
-- ``bar_timeframe`` the bar length ('1h', '1d'); the range is data_start .. data_end.
-- ``synthetic_bars``: true for generated bars, false for real ones, NULL for versions
-- registered before this migration (their source is unknown; they are not treated as synthetic).
ALTER TABLE model_registry
    ADD COLUMN bar_source text CHECK (bar_source IS NULL OR btrim(bar_source) <> ''),
    ADD COLUMN bar_timeframe text CHECK (bar_timeframe IS NULL OR btrim(bar_timeframe) <> ''),
    ADD COLUMN synthetic_bars boolean;

