-- Fixes stored after the matcher had already moved past their time (a tracker that sends
-- its live fixes first and its tunnel buffer later). The coverage worker matches them as
-- a run of their own, in fix-time order, and deletes them here.
CREATE TABLE coverage_late (
    vehicle_id  bigint NOT NULL REFERENCES vehicles (id) ON DELETE CASCADE,
    fix_time    timestamptz NOT NULL,
    town_id     bigint NOT NULL REFERENCES towns (id) ON DELETE CASCADE,
    PRIMARY KEY (vehicle_id, fix_time)
);
CREATE INDEX coverage_late_town ON coverage_late (town_id);
