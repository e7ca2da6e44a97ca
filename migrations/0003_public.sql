-- The residents' view: street search, address ranges, per-town privacy rules for the
-- public map, depots, and problem reports.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public;

-- A street name reduced to what people mean by it, so "5th Ave", "Fifth Avenue" and
-- "FIFTH AV" compare equal and "Kauppalankatu" matches "kauppalankatu": accents dropped,
-- lower case, punctuation to spaces, ordinal words to "5th", street types and compass
-- words to one short spelling. One definition, used for the index and for every query.
-- The dictionary is named with its schema: an index expression must not depend on the
-- caller's search_path (which is why unaccent() alone is only STABLE).
CREATE FUNCTION plowshare_search_key(name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(coalesce(w.canon, t.word), ' ' ORDER BY t.n), '')
      FROM regexp_split_to_table(
               lower(public.unaccent('public.unaccent'::regdictionary, name)),
               '[^[:alnum:]]+') WITH ORDINALITY AS t(word, n)
      LEFT JOIN (VALUES
          ('first', '1st'), ('second', '2nd'), ('third', '3rd'), ('fourth', '4th'),
          ('fifth', '5th'), ('sixth', '6th'), ('seventh', '7th'), ('eighth', '8th'),
          ('ninth', '9th'), ('tenth', '10th'), ('eleventh', '11th'), ('twelfth', '12th'),
          ('thirteenth', '13th'), ('fourteenth', '14th'), ('fifteenth', '15th'),
          ('sixteenth', '16th'), ('seventeenth', '17th'), ('eighteenth', '18th'),
          ('nineteenth', '19th'), ('twentieth', '20th'),
          ('avenue', 'av'), ('ave', 'av'), ('street', 'st'), ('str', 'st'),
          ('road', 'rd'), ('drive', 'dr'), ('boulevard', 'blvd'), ('place', 'pl'),
          ('terrace', 'ter'), ('lane', 'la'), ('ln', 'la'), ('court', 'ct'),
          ('parkway', 'pkwy'), ('circle', 'cir'), ('highway', 'hwy'), ('square', 'sq'),
          ('north', 'n'), ('south', 's'), ('east', 'e'), ('west', 'w')
      ) AS w(word, canon) ON w.word = t.word
     WHERE t.word <> ''
$$;

CREATE INDEX street_segments_search ON street_segments
    USING gin (plowshare_search_key(name) gin_trgm_ops) WHERE valid_to IS NULL;

-- Address ranges of a block, by the town's own segment id (source_id) so they survive a
-- re-import that gives changed blocks new rows. Left/right as digitised.
CREATE TABLE segment_addresses (
    town_id     bigint NOT NULL REFERENCES towns (id) ON DELETE CASCADE,
    source_id   text NOT NULL,
    left_from   integer,
    left_to     integer,
    right_from  integer,
    right_to    integer,
    PRIMARY KEY (town_id, source_id)
);

-- What the public map may show of the fleet, per town. Dispatchers see everything live.
CREATE TABLE town_settings (
    town_id            bigint PRIMARY KEY REFERENCES towns (id) ON DELETE CASCADE,
    -- positions (and the street status they reveal) are shown this late to the public
    delay_s            integer NOT NULL DEFAULT 0 CHECK (delay_s BETWEEN 0 AND 3600),
    off_storm_delay_s  integer NOT NULL DEFAULT 0 CHECK (off_storm_delay_s BETWEEN 0 AND 3600),
    pseudonymous       boolean NOT NULL DEFAULT true,
    hide_idle          boolean NOT NULL DEFAULT true,
    -- a vehicle silent this long, or parked with blade up and spreader off, is idle
    idle_after_s       integer NOT NULL DEFAULT 600 CHECK (idle_after_s BETWEEN 30 AND 86400),
    -- upper bounds of the "time since service" colour bins, in minutes
    bins_min           integer[] NOT NULL DEFAULT '{60,180,360,720}'
                       CHECK (cardinality(bins_min) BETWEEN 1 AND 8 AND 0 < ALL (bins_min)),
    -- optional base map style, same origin only: the page's CSP allows nothing else
    base_style_url     text CHECK (base_style_url ~ '^/[^/]'),
    -- secret per town; public vehicle labels are derived from it (see app/town_rules.py)
    pseudonym_salt     uuid NOT NULL DEFAULT gen_random_uuid(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
INSERT INTO town_settings (town_id) SELECT id FROM towns;

CREATE FUNCTION plowshare_town_settings_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO town_settings (town_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;
CREATE TRIGGER towns_settings_row AFTER INSERT ON towns
    FOR EACH ROW EXECUTE FUNCTION plowshare_town_settings_row();

-- Where vehicles park: a polygon, or a point with a radius. Vehicles inside are hidden
-- from the public map.
CREATE TABLE depots (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    town_id   bigint NOT NULL REFERENCES towns (id) ON DELETE CASCADE,
    name      text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    geom      geometry(Geometry, 4326) NOT NULL
              CHECK (GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')),
    radius_m  real NOT NULL DEFAULT 0 CHECK (radius_m BETWEEN 0 AND 5000)
);
CREATE INDEX depots_town ON depots (town_id);

-- Metres on the spheroid, so a 150 m radius is 150 m in Kouvola and in Syracuse alike.
CREATE FUNCTION plowshare_at_depot(town bigint, pt geometry) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (SELECT 1 FROM depots d
                    WHERE d.town_id = town
                      AND ST_DWithin(d.geom::geography, pt::geography, d.radius_m))
$$;

-- "This street was not plowed": an Open311-style service request from a resident.
-- Nothing about the person is stored; what the system knew of the street when the
-- report came in is, so a dispatcher can weigh the report against the evidence.
CREATE TABLE problem_reports (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    town_id             bigint NOT NULL REFERENCES towns (id) ON DELETE CASCADE,
    segment_id          bigint NOT NULL REFERENCES street_segments (id) ON DELETE CASCADE,
    storm_id            bigint REFERENCES storms (id) ON DELETE SET NULL,
    service_code        text NOT NULL
                        CHECK (service_code IN ('not_plowed', 'not_salted', 'blocked',
                                                'other')),
    description         text CHECK (length(description) <= 500),
    status              text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    requested_at        timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    last_service_at_report  timestamptz,
    passes_at_report    integer NOT NULL DEFAULT 0
);
CREATE INDEX problem_reports_town_time ON problem_reports (town_id, requested_at);

-- Fixed-window counters for rate limiting reports per client. client_key is a salted
-- hash of the client address (the salt never leaves the database); rows are deleted
-- once their window has passed, so no long-lived trace of a client remains.
CREATE TABLE report_limits (
    client_key    bytea NOT NULL,
    window_start  timestamptz NOT NULL,
    n             integer NOT NULL,
    PRIMARY KEY (client_key, window_start)
);
CREATE TABLE public_secrets (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    client_salt  uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO public_secrets DEFAULT VALUES;
