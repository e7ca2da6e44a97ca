-- Retention: raw pings are dropped a whole day at a time (a partition drop is instant and
-- leaves no bloat); coverage history (segment_services, segment_status) is kept.
CREATE FUNCTION plowshare_drop_ping_partitions(keep_from timestamptz)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    part record;
BEGIN
    FOR part IN
        SELECT c.relname
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'pings'::regclass
           AND c.relname ~ '^pings_p[0-9]{8}$'
           -- a day's partition goes once all of it is older than keep_from
           AND (to_date(substr(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC'
               <= keep_from
         ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END $$;
