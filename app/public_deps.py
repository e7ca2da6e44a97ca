"""Dependencies of the residents' side, in the style of app/deps.py. Its state is made
by :func:`install` when the app is created (settings read then, never at import)."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import Depends, FastAPI, Header
from starlette.requests import HTTPConnection

from app.cards import OutlookCache
from app.errors import PlowshareError
from app.public_feed import PublicFeeds
from app.public_settings import PublicSettings
from app.public_status import RulesCache

log = logging.getLogger(__name__)


class Unauthorized(PlowshareError):
    pass


class DispatchDisabled(PlowshareError):
    pass


def install(app: FastAPI, settings: PublicSettings | None = None) -> None:
    public = settings or PublicSettings()
    app.state.public = public
    app.state.public_rules = RulesCache(public.rules_cache_s)
    app.state.public_outlook = OutlookCache()
    app.state.public_feeds = None  # made with the first public websocket (needs the hub)
    if public.dispatch_token is None:
        log.warning("PLOWSHARE_PUBLIC_DISPATCH_TOKEN is not set: /api/dispatch/... is off")


def get_public(conn: HTTPConnection) -> PublicSettings:
    settings: PublicSettings = conn.app.state.public
    return settings


def get_rules_cache(conn: HTTPConnection) -> RulesCache:
    cache: RulesCache = conn.app.state.public_rules
    return cache


def get_outlook(conn: HTTPConnection) -> OutlookCache:
    cache: OutlookCache = conn.app.state.public_outlook
    return cache


def get_feeds(conn: HTTPConnection) -> PublicFeeds:
    state = conn.app.state
    if state.public_feeds is None:
        state.public_feeds = PublicFeeds(
            state.pool, state.hub, state.public_rules,
            state.settings.server.ws_queue_size, state.public.rules_refresh_s)
    feeds: PublicFeeds = state.public_feeds
    return feeds


PublicDep = Annotated[PublicSettings, Depends(get_public)]
RulesDep = Annotated[RulesCache, Depends(get_rules_cache)]
OutlookDep = Annotated[OutlookCache, Depends(get_outlook)]
FeedsDep = Annotated[PublicFeeds, Depends(get_feeds)]


def dispatch_token_ok(public: PublicSettings, presented: str | None) -> bool:
    """For websockets, which cannot send an Authorization header from a browser."""
    token = public.dispatch_token
    if token is None or presented is None:
        return False
    return hmac.compare_digest(presented.encode(), token.get_secret_value().encode())


def require_dispatcher(
    public: PublicDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """Until dispatcher accounts exist: a shared bearer token. Without one configured the
    dispatch API is off — the public API stays read-only apart from problem reports."""
    token = public.dispatch_token
    if token is None:
        raise DispatchDisabled("the dispatch API is off: set PLOWSHARE_PUBLIC_DISPATCH_TOKEN")
    expected = f"Bearer {token.get_secret_value()}"
    if authorization is None or not hmac.compare_digest(authorization.encode(),
                                                        expected.encode()):
        raise Unauthorized("dispatcher token required")


DispatcherDep = Annotated[None, Depends(require_dispatcher)]
