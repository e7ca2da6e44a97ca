-- Device credentials: each vehicle gets its own MQTT account and HTTP token.
--
-- The MQTT password is never stored here: the broker's dynamic-security plugin keeps its
-- own salted hash, and plowshare only remembers the account's name. The HTTP token is
-- stored as an argon2id hash, found by token_id (a random public part of the token) so a
-- request costs one index lookup and at most one hash verification.
--
-- Rows are never deleted: a revoked credential keeps its row (revoked_at), so the history
-- of who could send as a vehicle stays answerable.
CREATE TABLE device_credentials (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    town_id        bigint NOT NULL,
    vehicle_id     bigint NOT NULL,
    mqtt_username  text NOT NULL CHECK (mqtt_username ~ '^[a-z0-9-]+\.[A-Za-z0-9_.-]+$'),
    -- false when issued with --no-broker (HTTP only; the broker knows no such account)
    mqtt_enabled   boolean NOT NULL,
    token_id       text NOT NULL UNIQUE CHECK (token_id ~ '^[0-9a-f]{16}$'),
    token_hash     text NOT NULL CHECK (token_hash LIKE '$argon2id$%'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    CHECK (revoked_at IS NULL OR revoked_at >= created_at),
    FOREIGN KEY (town_id, vehicle_id) REFERENCES vehicles (town_id, id) ON DELETE CASCADE
);
-- At most one live credential per vehicle, and per broker account name.
CREATE UNIQUE INDEX device_credentials_active_vehicle
    ON device_credentials (vehicle_id) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX device_credentials_active_username
    ON device_credentials (mqtt_username) WHERE revoked_at IS NULL;
