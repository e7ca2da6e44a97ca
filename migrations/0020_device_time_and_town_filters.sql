-- Device formats and per-town filters (ingest/formats/, ingest/filters.py).

-- When the device built the message (OwnTracks created_at), as distinct from when its
-- GPS fixed the position (fix_time) and when plowshare received it (received_at). NULL:
-- the format does not say. Nullable without a default, so adding it rewrites nothing.
ALTER TABLE pings ADD COLUMN device_time timestamptz;

-- Each town's position filters (Traccar's filter.* per town). A NULL threshold means
-- "the deployment's default" (PLOWSHARE_INGEST_*); `disabled` names filters this town
-- switches off. A town without a row uses the defaults throughout.
CREATE TABLE town_filter_settings (
    town_id         bigint PRIMARY KEY REFERENCES towns (id) ON DELETE CASCADE,
    -- Finite bounds also keep out NaN and Infinity, which double precision accepts.
    max_future_s    double precision CHECK (max_future_s >= 0 AND max_future_s < 1e9),
    max_age_s       double precision CHECK (max_age_s > 0 AND max_age_s < 1e10),
    max_accuracy_m  double precision CHECK (max_accuracy_m > 0 AND max_accuracy_m < 1e7),
    max_speed_mps   double precision CHECK (max_speed_mps > 0 AND max_speed_mps < 1e4),
    speed_window_s  double precision CHECK (speed_window_s > 0 AND speed_window_s < 1e7),
    speed_slack_m   double precision CHECK (speed_slack_m >= 0 AND speed_slack_m < 1e7),
    disabled        text[] NOT NULL DEFAULT '{}'
                    CHECK (disabled <@ ARRAY['invalid_fix', 'future_time', 'too_old',
                                             'poor_accuracy', 'impossible_speed']),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
