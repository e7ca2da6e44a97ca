"""Configuration, read from the environment (prefix ``PLOWSHARE_``) when asked for.

Settings are split by concern, as tipg does, so a process only needs the parts it uses:
the ingester never reads HTTP settings and the server never reads MQTT credentials.
Nothing here is instantiated at import time: callers use :func:`load_settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, StrictFloat, StrictInt, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo.matchtypes import MatchConfig

REPO_ROOT = Path(__file__).resolve().parents[1]


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLOWSHARE_DATABASE_", extra="ignore")

    url: str = "postgresql://plowshare:plowshare@127.0.0.1:5432/plowshare"
    pool_min: int = Field(1, ge=0)
    pool_max: int = Field(10, ge=1)
    command_timeout_s: float = Field(30.0, gt=0)
    migrations_dir: Path = REPO_ROOT / "migrations"


class MqttSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLOWSHARE_MQTT_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    # A fixed client id plus clean_session=False gives the ingester a persistent session:
    # QoS 1 messages published while it is down wait in the broker for it.
    client_id: str = "plowshare-ingest-1"
    # Set to run several ingest workers behind one MQTT shared subscription
    # ($share/<group>/...): the broker spreads messages across them.
    shared_group: str | None = None
    keepalive_s: int = Field(30, ge=5)
    topic_prefix: str = "plowshare"
    tls: bool = False
    ca_file: Path | None = None


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLOWSHARE_INGEST_", extra="ignore")

    batch_size: int = Field(500, ge=1, le=50_000)
    flush_interval_s: float = Field(0.25, gt=0, le=60)
    # Messages waiting between the MQTT thread and the writer. When it is full the MQTT
    # thread blocks, so the broker holds back further messages instead of us dropping them.
    queue_size: int = Field(10_000, ge=1)
    max_payload_bytes: int = Field(256 * 1024, ge=256)
    max_fixes_per_message: int = Field(2_000, ge=1)
    max_future_s: float = Field(120.0, ge=0)
    max_age_s: float = Field(14 * 86_400.0, gt=0)
    # Until device credentials exist, a ping for an unknown vehicle of a known town
    # registers the vehicle; set false to quarantine such pings as unknown_vehicle.
    auto_register_vehicles: bool = True
    # With device credentials in use (plowshare vehicles add), store fixes only from
    # vehicles with live credentials in the topic's town; others: unauthorized_device.
    require_device_credentials: bool = False
    # Default filter thresholds (each town may override them in town_filter_settings);
    # None leaves the filter off, as Traccar does.
    max_accuracy_m: float | None = Field(None, gt=0)
    max_speed_mps: float | None = Field(None, gt=0)
    metrics_port: int | None = None
    # Raw pings (and quarantined messages) older than this are dropped, a day at a time;
    # coverage history is kept. None keeps everything.
    retention_days: int | None = Field(None, ge=1)
    # A batch whose writes keep failing with errors that are not outages (out of shared
    # memory, a statement timeout) is written message by message after this many
    # attempts, so one message cannot hold up ingestion for good.
    isolate_after_retries: int = Field(5, ge=1)
    # Test-only: "exit_before_commit:N" or "exit_after_commit:N" makes the worker exit
    # abruptly at that point of its N-th batch, as a crash would.
    fault_injection: str | None = None


    @model_validator(mode="after")
    def _retention_covers_accepted_ages(self) -> IngestSettings:
        # Accepting fixes older than what retention keeps would re-create dropped days.
        if self.retention_days is not None and self.retention_days * 86_400 < self.max_age_s:
            raise ValueError("retention_days must cover max_age_s")
        return self


class CoverageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLOWSHARE_COVERAGE_", extra="ignore")

    # The ingest worker matches committed fixes to streets and records service.
    enabled: bool = True
    min_fraction: float = Field(0.8, gt=0, le=1)
    interval_s: float = Field(1.0, gt=0)
    # Fixes younger than this wait, so late arrivals of a few seconds are fed in order.
    settle_s: float = Field(5.0, ge=0)
    # A vehicle silent this long has its track finalised.
    flush_after_s: float = Field(120.0, gt=0)
    rewind_s: float = Field(120.0, ge=0)
    max_fixes_per_round: int = Field(5_000, ge=1)
    # The matcher's settable knobs for the whole deployment (geo.matchtypes.SETTABLE),
    # as JSON: PLOWSHARE_COVERAGE_MATCH='{"map_gap_m": 0}'. A town's own (dispatcher API,
    # /api/dispatch/towns/{slug}/matching) go on top. Give the API server and the ingest
    # workers the same.
    match: dict[str, StrictFloat | StrictInt] = Field(default_factory=dict)

    @field_validator("match")
    @classmethod
    def _settable(cls, v: dict[str, float]) -> dict[str, float]:
        MatchConfig().changed(v)
        return v

    def match_config(self) -> MatchConfig:
        return MatchConfig().changed(self.match)

    def town_match_config(self, town: Mapping[str, object]) -> tuple[MatchConfig, str | None]:
        """The deployment's settings with a town's own on top, and what was wrong with
        the town's if they had to be left out (stored past the API's checks)."""
        base = self.match_config()
        try:
            return base.changed(town), None
        except ValueError as exc:
            return base, str(exc)


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLOWSHARE_HTTP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    static_dir: Path = REPO_ROOT / "static"
    # Per-websocket queue of outgoing messages; a client that falls this far behind is
    # disconnected (it reconnects and gets a fresh snapshot) so it never stalls others.
    ws_queue_size: int = Field(256, ge=1)
    ws_keepalive_s: float = Field(20.0, gt=0)
    max_request_bytes: int = Field(64 * 1024, ge=1024)
    # Proxies whose X-Forwarded-For / -Proto are believed (comma-separated, or "*"). Behind
    # a reverse proxy, set it to the proxy's address: per-client limits (problem reports)
    # key on the real client address only then.
    forwarded_allow_ips: str = "127.0.0.1"


class GeneralSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLOWSHARE_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    log_level: str = "INFO"


@dataclass(frozen=True)
class Settings:
    general: GeneralSettings = field(default_factory=lambda: GeneralSettings())
    database: DatabaseSettings = field(default_factory=lambda: DatabaseSettings())
    mqtt: MqttSettings = field(default_factory=lambda: MqttSettings())
    ingest: IngestSettings = field(default_factory=lambda: IngestSettings())
    coverage: CoverageSettings = field(default_factory=lambda: CoverageSettings())
    server: ServerSettings = field(default_factory=lambda: ServerSettings())

    def __post_init__(self) -> None:
        if self.general.environment == "production":
            _refuse_placeholders(self)


def _refuse_placeholders(settings: Settings) -> None:
    # Same habit as the FastAPI full-stack template: the development defaults are fine on a
    # laptop and dangerous on a city's server, so production refuses to start with them.
    if "plowshare:plowshare@" in settings.database.url:
        raise ValueError("PLOWSHARE_DATABASE_URL still has the development password")


def load_settings() -> Settings:
    """Read every settings group from the environment, now."""
    return Settings()


__all__ = [
    "CoverageSettings",
    "DatabaseSettings",
    "GeneralSettings",
    "IngestSettings",
    "MqttSettings",
    "ServerSettings",
    "Settings",
    "load_settings",
]
