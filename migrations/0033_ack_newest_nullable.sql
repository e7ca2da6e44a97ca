-- A device whose fixes have so far all been quarantined has no newest stored fix, yet
-- its sequence numbers are settled and must be acknowledged.
ALTER TABLE device_acks ALTER COLUMN newest_fix DROP NOT NULL;
