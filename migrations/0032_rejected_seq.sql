-- A fix the ingester rejected is settled too: the device must not re-send it forever.
-- End-to-end acknowledgements therefore count sequence numbers found in quarantine.
ALTER TABLE rejected_pings ADD COLUMN seq bigint;
CREATE INDEX rejected_pings_vehicle_seq ON rejected_pings (town_id, vehicle_ident, seq)
    WHERE seq IS NOT NULL;
