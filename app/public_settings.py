"""Settings of the residents' side (environment prefix ``PLOWSHARE_PUBLIC_``).

Per-town rules (delay, pseudonyms, bins, depots) live in the database, not here: each town
sets its own. These are the deployment's knobs.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class PublicSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLOWSHARE_PUBLIC_", extra="ignore")

    # Bearer token for /api/dispatch/... until dispatcher accounts exist. Unset: those
    # endpoints are open (development only; the server logs a warning at start).
    dispatch_token: SecretStr | None = None
    # Problem reports per client address per window.
    report_limit: int = Field(5, ge=1)
    report_window_s: int = Field(3600, ge=10)
    # Versioned tile URLs (?v=) are cacheable this long; their content can only be newer.
    tile_max_age_s: int = Field(3600, ge=0)
    search_limit: int = Field(8, ge=1, le=50)
    # "Near me" farther than this from any street: the resident is not in the town.
    near_max_m: float = Field(2000.0, gt=0)
    # How often a town's public feed re-reads its rules when nobody says they changed
    # (the storm CLI does not notify).
    rules_refresh_s: float = Field(15.0, gt=0)
    # Town rules are cached this long per server process for tiles and cards.
    rules_cache_s: float = Field(2.0, ge=0)
