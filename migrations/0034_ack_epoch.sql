-- New credentials usually mean a new tracker, whose sequence numbers start again at 0.
-- Acknowledgements count only fixes stored since the vehicle's current credentials were
-- issued, so the old tracker's high sequence numbers cannot acknowledge the new one's.
ALTER TABLE device_acks ADD COLUMN since timestamptz NOT NULL DEFAULT '-infinity';
