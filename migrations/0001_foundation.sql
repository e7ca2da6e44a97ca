-- Foundation schema. Every row belongs to a town: one deployment serves many towns.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE towns (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text NOT NULL UNIQUE
                CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    timezone    text NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Block segments of the street network. A re-import retires a segment (valid_to) rather
-- than deleting it, so coverage history keeps pointing at the geometry it was measured on.
CREATE TABLE street_segments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    town_id     bigint NOT NULL REFERENCES towns (id) ON DELETE CASCADE,
    source_id   text NOT NULL,
    name        text,
    road_class  text NOT NULL,
    -- true: may only be driven in the direction the geometry is digitised
    oneway      boolean NOT NULL DEFAULT false,
    length_m    double precision NOT NULL CHECK (length_m >= 0),
    priority    smallint NOT NULL CHECK (priority BETWEEN 1 AND 9),
    start_node  text,
    end_node    text,
    geom        geometry(LineString, 4326) NOT NULL,
    valid_from  timestamptz NOT NULL DEFAULT now(),
    valid_to    timestamptz,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE UNIQUE INDEX street_segments_current_source
    ON street_segments (town_id, source_id) WHERE valid_to IS NULL;
CREATE INDEX street_segments_geom ON street_segments USING gist (geom);

CREATE TABLE vehicles (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    town_id     bigint NOT NULL REFERENCES towns (id) ON DELETE CASCADE,
    ident       text NOT NULL CHECK (ident ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    label       text,
    kind        text NOT NULL DEFAULT 'plow',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (town_id, ident),
    -- lets child tables reference (town, vehicle) together so a ping can never name a
    -- vehicle of another town
    UNIQUE (town_id, id)
);

-- Every accepted fix. Partitioned by day of fix time so retention is a partition drop.
-- (vehicle_id, fix_time) is unique: a redelivered or replayed fix is stored once.
CREATE TABLE pings (
    town_id      bigint NOT NULL,
    vehicle_id   bigint NOT NULL,
    fix_time     timestamptz NOT NULL,           -- when the GPS fixed the position
    received_at  timestamptz NOT NULL,           -- when the ingester received the message
    stored_at    timestamptz NOT NULL DEFAULT now(),
    geom         geometry(Point, 4326) NOT NULL,
    speed_mps    real,
    heading_deg  real,
    accuracy_m   real,
    plow_down    boolean,
    spreader_on  boolean,
    seq          bigint,
    raw          jsonb NOT NULL,                 -- the fix exactly as the device sent it
    PRIMARY KEY (vehicle_id, fix_time),
    FOREIGN KEY (town_id, vehicle_id) REFERENCES vehicles (town_id, id) ON DELETE CASCADE
) PARTITION BY RANGE (fix_time);
CREATE INDEX pings_town_time ON pings (town_id, fix_time);

-- Creates the daily partitions covering [first_day, last_day]. Safe to call concurrently
-- from several ingest workers.
CREATE FUNCTION plowshare_ensure_ping_partitions(first_day date, last_day date)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d date := first_day;
    part text;
BEGIN
    WHILE d <= last_day LOOP
        part := format('pings_p%s', to_char(d, 'YYYYMMDD'));
        IF to_regclass(part) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF pings FOR VALUES FROM (%L) TO (%L)',
                    part, d::timestamp AT TIME ZONE 'UTC',
                    (d + 1)::timestamp AT TIME ZONE 'UTC');
            EXCEPTION WHEN duplicate_table THEN
                NULL;  -- another worker created it first
            END;
        END IF;
        d := d + 1;
    END LOOP;
END $$;

-- The newest fix of each vehicle. Updated only forward in fix time, so a late or
-- replayed fix never moves a plow backwards on the map.
CREATE TABLE vehicle_positions (
    vehicle_id   bigint PRIMARY KEY,
    town_id      bigint NOT NULL,
    fix_time     timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    geom         geometry(Point, 4326) NOT NULL,
    speed_mps    real,
    heading_deg  real,
    accuracy_m   real,
    plow_down    boolean,
    spreader_on  boolean,
    FOREIGN KEY (town_id, vehicle_id) REFERENCES vehicles (town_id, id) ON DELETE CASCADE
);
CREATE INDEX vehicle_positions_town ON vehicle_positions (town_id);

-- Quarantine: everything the ingester did not accept, with why, exactly as received.
-- town_id is null only when the message named a town that does not exist.
CREATE TABLE rejected_pings (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    town_id        bigint REFERENCES towns (id) ON DELETE CASCADE,
    town_slug      text,
    vehicle_ident  text,
    topic          text NOT NULL,
    reason         text NOT NULL,
    detail         text,
    fix_index      integer,      -- position inside an array payload; null = whole message
    payload        bytea NOT NULL,
    received_at    timestamptz NOT NULL,
    stored_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejected_pings_town ON rejected_pings (town_id, received_at);
CREATE INDEX rejected_pings_reason ON rejected_pings (reason, received_at);
