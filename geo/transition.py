"""HMM steps and the transition score between the candidates of consecutive steps.

This is the matcher's hot loop (candidates² per step), so it is written against
plain lists with locals bound once; see ``geo.routing`` for why the network is flat.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

from geo.cluster import Seed

if TYPE_CHECKING:
    from geo.match import Matcher
    from geo.routing import Tree

_NEG = -math.inf
BEAM = 12.0  # log-units; a hypothesis this far behind is e**-12 as likely
SAME, ROUTED, U_TURN, TURN_ROUTED, ROUND = 0, 1, 2, 3, 4
_SLOW_U_TURN = 0.25  # share of the U-turn penalty left when the vehicle crawls
_DENSE_S = 5.0  # unseen no longer than this, the fixes show where a vehicle turned
_RATIO_M = 10.0  # added to both lengths of the ratio cue: short moves are all noise
# Fixes this far apart may be joined round the block (ROUND): not closer (no block is
# driven round in less; measured no better at 5 s, and slower), nor farther (below).
_ROUND_MIN_S, _ROUND_MAX_S = 10.0, 45.0
_ROUND_BEAM = 2.0  # ... and only from states this close to the best (log-units)


class Step:
    """One fix that became an HMM step, with its candidate states."""

    __slots__ = ("back", "chosen", "conf", "dist", "edges", "emis", "first_fix", "gap", "kind",
                 "last_fix", "offs", "plow", "score", "sigma", "speed", "spreader", "t",
                 "t_leave", "x", "y")

    def __init__(self, seed: Seed, sigma: float,
                 cands: tuple[list[int], list[float], list[float]]) -> None:
        p = seed.ping
        self.x, self.y, self.sigma = seed.x, seed.y, sigma
        self.t, self.t_leave = seed.t, seed.t_leave  # arrived, left (stood still between)
        # First and last fix of its cluster (the same, for a cluster of one).
        self.first_fix, self.last_fix = seed.first_fix, seed.last_fix
        self.speed, self.plow, self.spreader = p.speed_mps, p.plow, p.spreader
        self.edges, self.offs, self.emis = cands  # directed edge, offset on it, log-emission
        self.back: list[int] = []  # best predecessor candidate, per candidate
        self.kind: list[int] = []  # SAME, ROUTED, U_TURN or TURN_ROUTED, per candidate
        self.dist: list[float] = []  # metres driven from the best predecessor, per candidate
        self.score: list[float] = []  # Viterbi score when it was added, per candidate
        self.gap = 0.0  # seconds driving from the previous step
        self.chosen = -1  # decided candidate once final
        self.conf = 1.0

    def fresh(self) -> Step:
        """This fix as a step of another chain: same candidates, nothing decided."""
        other = copy.copy(self)
        other.back, other.kind, other.dist, other.score = [], [], [], []
        other.gap, other.chosen, other.conf = 0.0, -1, 1.0
        return other


def u_turn_point(la: float, oa: float, lb: float, ob: float) -> tuple[float, float]:
    """Turning point on edge a, and fix b's position there, for a U-turn onto b = rev(a).

    The least driving that explains both fixes: on to the farther of the two points,
    then back. Crediting more would be guessing how far it went. Offsets are in a's
    driving direction (b may be a twin arc of slightly different length).
    """
    pb = la - ob * (la / lb if lb > 0 else 1.0)
    return max(oa, pb), pb


def transition(
    m: Matcher, prev: Step, prev_score: list[float], cur: Step, pace: float = -1.0
) -> tuple[list[float], list[int], list[int], list[float]]:
    """Best score (without cur's emission), predecessor, route kind and metres per candidate.

    ``pace`` (m/s, <= 0 unknown) is how fast the vehicle has recently been driving by
    its own matched route; used like a reported speed when the fixes report none.
    """
    cfg, net = m.config, m.net
    dt = max(cur.t - prev.t_leave, 1e-3)
    gc = math.hypot(cur.x - prev.x, cur.y - prev.y)
    noise = 3.0 * (prev.sigma + cur.sigma)
    detour = 2.0 * gc + cfg.max_detour_m
    inv_beta = 1.0 / (cfg.beta_m + cfg.beta_per_s * dt)
    tol = cfg.reverse_tolerance_sigmas * max(prev.sigma, cur.sigma)
    # With reported speeds the route length should also be near speed x time. That
    # is the only cue that tells a loop round a turning circle from a U-turn, but
    # speeds are instantaneous (a plow stops at lights), so it enters as the second
    # half of a mixture: a route explained by either cue is plausible.
    expect = -1.0
    inv_beta_v = mix_gc = mix_v = 0.0
    reported = False
    if cfg.speed_weight > 0 and prev.speed is not None and cur.speed is not None:
        reported = True
        expect = 0.5 * (prev.speed + cur.speed) * dt
        inv_beta_v = 1.0 / (cfg.beta_m + cfg.beta_per_s * dt + 0.1 * expect)
        mix_gc = math.log(1.0 - cfg.speed_weight)
        mix_v = math.log(cfg.speed_weight)
    elif (cfg.pace_weight > 0 and pace > 0.0 and dt > cfg.pace_min_gap_s
          and gc < cfg.pace_gate * pace * dt):
        # No speeds, but the vehicle's recent pace: between fixes 15 s apart a plow
        # drives ~130 m whether the fixes are 130 m apart or 30 m (round a block, into
        # a dead end and back), and the straight line alone prefers the short way.
        # Only fixes much closer than the pace says: where they are about as far
        # apart as it says, the straight line is the better cue (a car that slowed
        # in traffic would otherwise be sent round the block).
        expect = pace * dt
        inv_beta_v = 1.0 / (cfg.beta_m + cfg.beta_per_s * dt + cfg.pace_tolerance * expect)
        mix_gc = math.log(1.0 - cfg.pace_weight)
        mix_v = math.log(cfg.pace_weight)
    # A route this much longer than both cues is not a detour but a sign that the
    # vehicle used a road the map lacks: better no route (a split) than a made-up one.
    implausible = cfg.implausible_betas
    reach = gc + implausible / inv_beta
    if expect >= 0.0:
        reach = max(reach, expect + implausible / inv_beta_v)
        # A winding road (hairpins, a bend round a hill) can be far longer than twice
        # the line between its fixes: what the vehicle's speed says it drove is no
        # detour. Without this a long mountain block is split into pieces.
        detour = max(detour, reach)
    if not reported and cfg.ratio_weight > 0:
        # Without speeds the ratio cue scores a detour by how many times longer than
        # the straight line it is, and up to about twice is ordinary between fixes a
        # minute apart (out to a corner and back up the next street): the metres cap
        # alone, fine for fixes seconds apart, would turn such a drive into a split.
        reach = max(reach, cfg.plausible_ratio * gc)
    lmax = min(cfg.max_speed_mps * dt + noise, detour, reach)
    length, to, frm, rev = net.length, net.to, net.frm, net.reverse
    wrong, dead = net.wrong_way, net.dead_end
    ww, ut, tb = cfg.wrong_way_penalty_m, cfg.u_turn_penalty_m, cfg.turn_back_penalty_m
    slow = cfg.heading_min_speed_mps
    if (prev.speed is not None and prev.speed < slow) or (cur.speed is not None
                                                           and cur.speed < slow):
        # A vehicle that reports crawling at either fix is turning round as often as
        # not (a three-point turn); at speed a U-turn is the exception.
        ut *= _SLOW_U_TURN
    # With speeds, a route that turns round at a crossing has the way round the block
    # beside it (ROUND, below), and speed x time tells the two apart: turning round
    # is then the exception it is for a plow, priced as a U-turn. Not between fixes
    # a minute apart: speed x time, blind to stops, then fits other loops about as
    # well as the driven one (simulated plows at 60 s: recall 0.821 -> 0.858, but
    # precision 0.965 -> 0.960, below fastmm's).
    go_round = reported and _ROUND_MIN_S <= dt <= _ROUND_MAX_S
    turn_back = ut if go_round else tb
    cur_edges, cur_offs = cur.edges, cur.offs
    k = len(cur_edges)
    best = [_NEG] * k
    back = [-1] * k
    kind = [SAME] * k
    dist = [0.0] * k
    opts: tuple[tuple[float, float, int], ...]  # (metres, penalty, kind) to score
    # Hypotheses this far behind the best cannot come back: skip their routes.
    floor = max(prev_score) - BEAM
    round_floor = max(prev_score) - _ROUND_BEAM
    use_speed = expect >= 0.0
    # Without speeds, |route - line| alone punishes every loop round a block as if the
    # fixes were seconds apart; the ratio of the two (FMM's cue) scales with the
    # interval. The kinder of the two decides (beside a pace cue too: together they
    # are the straight line's half of that mixture).
    # Seen every few seconds, though, the fixes show the way the vehicle went: the
    # metres cue is the right one, and in a dead end it turned where they show it
    # (with speeds, speed x time already tells). Not across a long cluster of fixes:
    # its mean may sit short of where the vehicle turned.
    seen = (cur.first_fix - prev.last_fix <= _DENSE_S
            and prev.last_fix - prev.first_fix <= 2.0 * _DENSE_S
            and cur.last_fix - cur.first_fix <= 2.0 * _DENSE_S) and not reported
    ratio_w = 0.0 if reported or seen else cfg.ratio_weight
    # Best predecessors first: their scores bound how long a route from a worse one
    # may be and still win, which keeps most searches short.
    order = sorted(range(len(prev_score)), key=prev_score.__getitem__, reverse=True)
    # No route scores above its predecessor's score plus the larger mixture weight
    # (miss and penalties are >= 0): once every candidate has that, the rest can only
    # lose, and a candidate that has it needs no route from this predecessor.
    top = max(mix_gc, mix_v) if use_speed else mix_gc
    for i in order:
        sa = prev_score[i]
        if sa < floor:
            break
        cap = sa + top
        if min(best) >= cap:
            break
        ea = prev.edges[i]
        oa = prev.offs[i]
        la = length[ea]
        rest = la - oa
        ra = rev[ea]
        search = None
        done: Tree = {}
        mouth = None  # search from a dead end's mouth (TURN_ROUTED), when needed
        round_search = None  # on from the end of ea, never turning round (ROUND)
        bound = lmax - rest + ww
        for j in range(k):
            if best[j] >= cap:
                continue
            round_max = 0.0  # > 0: the way round the block is scored too, this long at most
            eb = cur_edges[j]
            ob = cur_offs[j]
            if eb == ea and ob >= oa - tol:
                # Moving on along the block; a fix slightly behind the previous one is
                # noise (the vehicle stood or crawled), paid for by how far it slipped.
                if ob >= oa:
                    ln, pen = ob - oa, 0.0
                else:
                    ln, pen = 0.0, oa - ob
                opts = ((ln, pen, SAME),)
            else:
                ln = math.inf
                pen = 0.0
                turned = False
                if rest <= lmax:
                    if search is None:
                        search = net.search(to[ea])
                        done = search.done
                    hit = done.get(frm[eb])
                    if hit is None:
                        need = bound - ob
                        if best[j] > _NEG:
                            # Longer than this, the route scores below best[j] by
                            # the straight-line cue. (Without speeds the ratio cue
                            # can score it higher, so this also trims long detours;
                            # searching as far as that cue allows measured worse:
                            # real tracks at 60 s 0.9890/0.9539 -> 0.9884/0.9534.)
                            room = (sa - best[j] + mix_gc) / inv_beta + gc
                            if use_speed:
                                room = max(room, (sa - best[j] + mix_v) / inv_beta_v + expect)
                            need = min(need, room - rest - ob + ww)
                        hit = search.reach(frm[eb], need)
                    if hit is not None:
                        ln = rest + hit[1] + ob
                        pen = hit[0] - hit[1]
                        if wrong[eb] and eb != ea:
                            pen += ww
                        if not dead[ea]:
                            if eb == ra and hit[1] == 0.0:
                                pen += ut  # straight back the way it came, at a crossing
                                turned = True
                            elif ra >= 0 and hit[3] == ra:
                                pen += turn_back  # back at the first crossing, on elsewhere
                                turned = True
                        last = hit[2]
                        if last >= 0 and rev[last] == eb and not dead[last]:
                            pen += turn_back  # on, and back at the last crossing onto b
                            turned = True
                opts = ((ln, pen, ROUTED),)
                # The shortest way turns round at a crossing; a plow goes round the
                # block, which is longer: worth a look (once the moves above are
                # scored) only where the speeds say the vehicle drove further, and
                # only as much further again as they say.
                if turned and go_round and expect > ln and sa >= round_floor:
                    round_max = min(2.0 * expect - ln + ut, lmax)
                if eb == ra:
                    u, pb = u_turn_point(la, oa, length[eb], ob)
                    l2 = 2.0 * u - oa - pb
                    # Into a dead end, turning at its end is what vehicles do (that is
                    # why they went in); sparse fixes rarely catch the very end. Fixes
                    # seconds apart would have: there a turn is where they show it.
                    if not dead[ea]:
                        p2 = ut
                    elif seen:
                        p2 = tb
                    else:
                        p2 = ut if dt <= _DENSE_S else ut * 3.0
                    # Both ways round are scored in full, not just by length: the
                    # shorter is not always the likelier (speed x time can say the
                    # vehicle went on to the crossing or the dead end's end and back).
                    opts += ((l2, p2, U_TURN),)
                elif seen and dead[ea] and ra >= 0:
                    # Out of a dead end onto another block with no fix on the way back
                    # inside it: on to its end and back, or turned round where it was
                    # last seen in it. The same choice as the U-turn just above; the
                    # way out is searched from the dead end's mouth (a long dead end's
                    # way round by its end may be past reach).
                    back_m = oa * (length[ra] / la if la > 0 else 1.0)
                    if mouth is None:
                        mouth = net.search(to[ra])
                    out = mouth.reach(frm[eb], lmax - back_m - ob + ww)
                    if out is not None:
                        l3 = back_m + out[1] + ob
                        p3 = out[0] - out[1] + tb + (ww if wrong[eb] else 0.0)
                        opts += ((l3, p3, TURN_ROUTED),)
            while True:
                for ln, pen, kd in opts:
                    if ln > lmax:
                        continue
                    miss = (ln - gc if ln > gc else gc - ln) * inv_beta
                    if ratio_w > 0.0:
                        mr = ratio_w * (math.log(ln + _RATIO_M) - math.log(gc + _RATIO_M))
                        if mr < 0.0:
                            mr = -mr
                        if mr < miss:
                            miss = mr
                    if use_speed:
                        # Max rather than sum of the mixture: the same ranking within log 2.
                        miss_v = (ln - expect if ln > expect else expect - ln) * inv_beta_v
                        if miss - mix_gc > miss_v - mix_v:
                            miss = miss_v - mix_v + mix_gc
                            if miss_v > implausible:
                                continue
                        elif miss > implausible:
                            continue
                    elif miss > implausible:
                        continue
                    s = sa + mix_gc - miss - pen * inv_beta
                    if s > best[j]:
                        best[j] = s
                        back[j] = i
                        kind[j] = kd
                        dist[j] = ln
                if round_max <= 0.0:
                    break
                # The way round (no turning round but at dead ends), scored as one
                # more move. It is a little suspect: speeds overstate how far a
                # vehicle drove by every stop at a light, and a loop is what they
                # would then invent; so it pays the turn-back penalty, and it is
                # searched only as far as it could still beat the best so far.
                if best[j] > _NEG:
                    lose = best[j] - sa + tb * inv_beta
                    round_max = min(round_max, max((mix_gc - lose) / inv_beta + gc,
                                                   (mix_v - lose) / inv_beta_v + expect))
                if round_search is None:
                    round_search = net.edge_search(ea)
                go = round_search.reach(eb, round_max - rest - ob + ww)
                opts = () if go is None else ((rest + go[1] + ob, go[0] - go[1] + tb + (
                    ww if wrong[eb] and eb != ea else 0.0), ROUND),)
                round_max = 0.0
    return best, back, kind, dist
