-- A town's own changes to the map matcher's settable knobs (geo.matchtypes.SETTABLE),
-- on top of the deployment's (PLOWSHARE_COVERAGE_MATCH): e.g. {"map_gap_m": 0} where
-- dead ends a few metres apart are really divided by a barrier. Written through the
-- dispatcher API, which checks names and ranges; the coverage worker reads it.
ALTER TABLE town_settings
    ADD COLUMN match_config jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(match_config) = 'object');
