-- End-to-end acknowledgements. A broker that crashes can lose messages it had already
-- acknowledged to a device, so devices keep their fixes until plowshare itself says they
-- are committed. The acknowledgement is a contiguous high-water mark of the device's
-- sequence numbers: every seq <= acked_seq is stored. ("Newest committed fix" alone
-- would let a device discard fixes the broker lost before a newer one got through.)
CREATE TABLE device_acks (
    vehicle_id   bigint PRIMARY KEY REFERENCES vehicles (id) ON DELETE CASCADE,
    town_id      bigint NOT NULL REFERENCES towns (id) ON DELETE CASCADE,
    acked_seq    bigint NOT NULL,
    newest_fix   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Finding the next contiguous sequence numbers of a vehicle.
CREATE INDEX pings_vehicle_seq ON pings (vehicle_id, seq) WHERE seq IS NOT NULL;
