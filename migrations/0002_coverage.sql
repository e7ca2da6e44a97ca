-- Street coverage: storms, the evidence of every service pass, and per-storm status.

CREATE TABLE storms (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    town_id     bigint NOT NULL REFERENCES towns (id) ON DELETE CASCADE,
    name        text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
-- At most one running storm per town.
CREATE UNIQUE INDEX storms_running ON storms (town_id) WHERE ended_at IS NULL;
CREATE INDEX storms_town_time ON storms (town_id, started_at);

-- One row per pass of a vehicle along a segment in one direction that covered at least
-- the serviced fraction with the blade down or the spreader on: the evidence a resident
-- is shown behind "plowed".
CREATE TABLE segment_services (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    town_id      bigint NOT NULL REFERENCES towns (id) ON DELETE CASCADE,
    segment_id   bigint NOT NULL REFERENCES street_segments (id) ON DELETE CASCADE,
    vehicle_id   bigint NOT NULL,
    storm_id     bigint REFERENCES storms (id) ON DELETE SET NULL,
    forward      boolean NOT NULL,      -- driven in the direction of the geometry
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL,
    fraction     real NOT NULL CHECK (fraction BETWEEN 0 AND 1),
    plowed       boolean NOT NULL,
    salted       boolean NOT NULL,
    confidence   real NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (town_id, vehicle_id) REFERENCES vehicles (town_id, id) ON DELETE CASCADE,
    -- re-matching the same fixes after a restart records the pass once
    UNIQUE (segment_id, vehicle_id, forward, started_at)
);
CREATE INDEX segment_services_town_time ON segment_services (town_id, ended_at);
CREATE INDEX segment_services_segment_time ON segment_services (segment_id, ended_at);

-- Status of each segment per storm, kept current as services are recorded.
-- storm_key is the storm's id, or 0 for service while no storm was running.
CREATE TABLE segment_status (
    town_id          bigint NOT NULL REFERENCES towns (id) ON DELETE CASCADE,
    segment_id       bigint NOT NULL REFERENCES street_segments (id) ON DELETE CASCADE,
    storm_key        bigint NOT NULL,
    first_service    timestamptz NOT NULL,
    last_service     timestamptz NOT NULL,
    passes           integer NOT NULL CHECK (passes > 0),
    last_plowed      timestamptz,
    last_salted      timestamptz,
    last_vehicle_id  bigint,
    last_confidence  real,
    PRIMARY KEY (segment_id, storm_key)
);
CREATE INDEX segment_status_town_storm ON segment_status (town_id, storm_key);

-- How far each vehicle's fixes have been fed to the map matcher.
CREATE TABLE coverage_cursors (
    vehicle_id  bigint PRIMARY KEY REFERENCES vehicles (id) ON DELETE CASCADE,
    town_id     bigint NOT NULL REFERENCES towns (id) ON DELETE CASCADE,
    fed_until   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
