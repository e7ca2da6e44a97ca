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

from collections.abc import Callable

from geo.emit import Cleared, Piece, blade_switch

BLADE_RULES = ("placed", "either")
BladePiece = tuple[int, float, float, bool]  # edge, from, to (driving order), blade down


def blade_pieces(
    route: list[Piece], down_a: bool, down_b: bool, t_a: float, t_b: float,
    cleared: Cleared, length: Callable[[int], float], rule: str = "placed",
) -> list[BladePiece]:
    """``route`` (one step's path, in driving order) as pieces with their blade state.

    ``down_a`` / ``down_b``: blade down at the step's first / last ping (no sensor
    counts as down, as it does for plowshare); ``t_a`` / ``t_b`` their times.
    ``cleared`` (this vehicle's plowing so far, on the same edge ids) is read to place
    a change and updated with the step's blade-down pieces; ``length`` gives an edge's
    length.
    """
    if rule not in BLADE_RULES:
        raise ValueError(f"blade rule must be one of {BLADE_RULES}, not {rule!r}")
    out: list[BladePiece]
    if down_a == down_b or rule == "either":
        out = [(e, lo, hi, down_a or down_b) for e, lo, hi in route]
    else:
        switch = blade_switch(route, cleared, t_a, down_a)
        out = []
        done = 0.0
        for e, lo, hi in route:
            d1, d2 = done, done + (hi - lo)
            done = d2
            if d1 < switch < d2:
                mid = lo + (switch - d1)
                out += [(e, lo, mid, down_a), (e, mid, hi, down_b)]
            else:
                out.append((e, lo, hi, down_a if d2 <= switch else down_b))
    for e, lo, hi, down in out:
        if down and hi > lo:
            cleared.add(e, lo, hi, length(e), t_b)
    return out
