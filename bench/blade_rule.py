"""Where a baseline engine's path was plowed, by the rule plowshare's engine applies.

fastmm matches positions only; the blade state comes from the pings. Between two
pings that agree, the whole path between them has that state. Between two that
differ, somewhere along the path the blade went up or down, and the benchmark must
decide where, for fastmm's path as for plowshare's. "placed" puts it where plowshare
does (``geo.emit.blade_switch``: at the crossing that best agrees with the streets this
vehicle already cleared, else the one nearest half-way), so the two engines are scored
under one rule and the comparison measures their matching. "either" credits the whole
step when either ping had the blade down: the most generous reading, kept so the
report can show what the choice is worth.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from geo.emit import Cleared, Piece, blade_switch

BLADE_RULES = ("placed", "either")
BladePiece = tuple[int, float, float, bool]  # edge, from, to (driving order), blade down


def blade_pieces(
    route: list[Piece], plow_a: bool | None, plow_b: bool | None, t_a: float, t_b: float,
    cleared: Cleared, length: Callable[[int], float], rule: str = "placed",
) -> list[BladePiece]:
    """``route`` (one step's path, in driving order) as pieces with their blade state.

    ``plow_a`` / ``plow_b``: the blade at the step's first / last ping (None: no
    sensor, which counts as plowing, as it does for plowshare); ``t_a`` / ``t_b`` their
    times. As in ``geo.emit.traversals``: where the two differ, the change goes where
    ``blade_switch`` puts it (from the streets cleared so far, when both pings report a
    blade; else half-way), and ``cleared`` (this vehicle's plowing, on the same edge
    ids) records the parts a ping reported blade down; ``length`` gives an edge's length.
    """
    if rule not in BLADE_RULES:
        raise ValueError(f"blade rule must be one of {BLADE_RULES}, not {rule!r}")
    either = plow_a is not False or plow_b is not False
    switch = math.inf  # pings that agree: the whole route is the first ping's
    if plow_a != plow_b:
        switch = blade_switch(route, cleared, t_a, plow_a if plow_b is not None else None)
    out: list[BladePiece] = []
    done = 0.0
    for e, lo, hi in route:
        d1, d2 = done, done + (hi - lo)
        done = d2
        cuts = [(lo, hi, d2 <= switch)]
        if d1 < switch < d2:
            mid = lo + (switch - d1)
            cuts = [(lo, mid, True), (mid, hi, False)]
        for c1, c2, first in cuts:
            state = plow_a if first else plow_b
            if state and c2 > c1:
                cleared.add(e, c1, c2, length(e), t_b)
            out.append((e, c1, c2, either if rule == "either" else state is not False))
    return out
