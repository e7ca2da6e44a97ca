"""CoverageBook: passes, union of intervals, min_fraction, blade and spreader rules."""

from __future__ import annotations

import dataclasses
import gc
import random

import pytest
from test_match_support import T0, Drive, cover, krems, pings, sample, straight_on

from geo.coverage import CoverageBook, compute_coverage, existing_objects_frozen
from geo.match import Traversal
from geo.network import Segment


def seg(sid: str, length: float = 100.0) -> Segment:
    return Segment(sid, None, "residential", False, ((15.0, 48.0), (15.001, 48.0)), length, 3,
                   f"{sid}a", f"{sid}b")


def tr(sid: str, a: float, b: float, t0: float, t1: float, *, forward: bool = True,
       vehicle: str = "v1", plow: bool | None = None, spreader: bool | None = None,
       confidence: float = 1.0) -> Traversal:
    return Traversal(vehicle, sid, forward, a, b, T0 + t0, T0 + t1, plow, spreader, confidence)


def test_one_pass_is_the_union_of_its_pieces_and_fires_once() -> None:
    book = CoverageBook([seg("s")])
    assert book.add([tr("s", 0, 50, 0, 5), tr("s", 40, 70, 5, 8)]) == []
    (event,) = book.add([tr("s", 65, 85, 8, 10, confidence=0.5)])
    assert (event.source_id, event.forward, event.vehicle) == ("s", True, "v1")
    assert event.fraction == pytest.approx(0.85)
    assert (event.t_start, event.t_end) == (T0, T0 + 10)
    assert event.plowed and not event.salted
    # Weighted by metres driven: 50 + 30 m at 1.0, 20 m at 0.5.
    assert event.confidence == pytest.approx((50 + 30 + 0.5 * 20) / 100)
    assert book.add([tr("s", 85, 100, 10, 12)]) == []  # same pass: no second event
    c = book.result()["s"]
    assert c.covered and c.passes == 1 and c.covered_fraction == pytest.approx(1.0)
    assert (c.first_service, c.last_service) == (T0 + 10, T0 + 12)


def test_scraps_of_separate_passes_never_add_up() -> None:
    book = CoverageBook([seg("s")])
    # Half each way (a U-turn), then half again a minute later: three passes.
    book.add([tr("s", 0, 50, 0, 5), tr("s", 0, 50, 5, 10, forward=False),
              tr("s", 50, 100, 70, 75)])
    c = book.result()["s"]
    assert not c.covered and c.passes == 0
    assert c.covered_fraction == pytest.approx(0.5)
    assert [(p.forward, p.fraction) for p in book.passes("s")] == [
        (True, 0.5), (False, 0.5), (True, 0.5)]
    # Another vehicle's half does not complete this one's either.
    book.add([tr("s", 0, 50, 76, 80, vehicle="v2")])
    assert not book.result()["s"].covered


def test_blade_up_is_travel_spreader_is_salting_no_sensor_is_plowing() -> None:
    book = CoverageBook([seg("up"), seg("salt"), seg("none"), seg("mixed")])
    assert book.add([tr("up", 0, 100, 0, 10, plow=False)]) == []
    (salt,) = book.add([tr("salt", 0, 100, 0, 10, plow=False, spreader=True)])
    (plain,) = book.add([tr("none", 0, 100, 0, 10)])
    (mixed,) = book.add([tr("mixed", 0, 50, 0, 5, plow=True),
                         tr("mixed", 50, 100, 5, 10, plow=False, spreader=True)])
    assert (salt.plowed, salt.salted) == (False, True)
    assert (plain.plowed, plain.salted) == (True, False)
    assert (mixed.plowed, mixed.salted) == (True, True)  # each treatment covered half
    res = book.result()
    assert not res["up"].covered and res["up"].covered_fraction == 0.0
    (up,) = book.passes("up")
    assert up.driven_fraction == 1.0 and up.fraction == 0.0 and not up.serviced


def test_min_fraction_and_every_segment_in_the_result() -> None:
    book = CoverageBook([seg("a"), seg("b"), seg("c")], min_fraction=0.5)
    book.add([tr("a", 0, 55, 0, 5), tr("b", 0, 45, 6, 10)])
    res = book.result()
    assert set(res) == {"a", "b", "c"}
    assert res["a"].covered and not res["b"].covered and not res["c"].covered
    assert res["c"].covered_fraction == 0.0 and res["c"].first_service is None
    with pytest.raises(ValueError):
        CoverageBook([seg("a")], min_fraction=0.0)
    with pytest.raises(KeyError):
        book.add([tr("nowhere", 0, 1, 0, 1)])


def test_events_and_passes_are_per_vehicle_when_fleets_interleave() -> None:
    book = CoverageBook([seg("s")])
    events = book.add([tr("s", 0, 50, 0, 5, vehicle="v1"), tr("s", 0, 60, 1, 6, vehicle="v2"),
                       tr("s", 50, 90, 5, 9, vehicle="v1"), tr("s", 60, 100, 6, 10,
                                                                  vehicle="v2")])
    assert [(e.vehicle, round(e.fraction, 2)) for e in events] == [("v1", 0.9), ("v2", 1.0)]
    assert book.result()["s"].passes == 2


def test_compute_coverage_sorts_and_groups_pings_itself() -> None:
    net = krems()
    path = straight_on(net, net.edge("w24980487:1", False), 3)
    a = pings(sample(Drive.along(path), interval_s=3.0), random.Random(1), vehicle="a")
    b = pings(sample(Drive.along(path), interval_s=3.0, t0=T0 + 7), random.Random(2),
              vehicle="b")
    ordered = compute_coverage(net.segments, a + b)
    shuffled = a + b
    random.Random(3).shuffle(shuffled)
    assert compute_coverage(net.segments, shuffled) == ordered
    assert set(ordered) == {s.source_id for s in net.segments}
    online, book = cover(net, sorted(a + b, key=lambda p: p.t))
    assert online == ordered
    served = {sid for sid, c in ordered.items() if c.covered}
    assert {e.source_id for e in path[1:]} <= served
    # Both trucks drove the middle block: two service passes, one per truck.
    mid = path[1].source_id
    assert ordered[mid].passes == 2
    assert {p.vehicle for p in book.passes(mid) if p.serviced} == {"a", "b"}


def test_existing_objects_frozen_hands_everything_back() -> None:
    # compute_coverage sets long-lived objects aside from the cycle collector for the
    # batch only: afterwards, and after a failure, nothing may stay frozen (frozen
    # cyclic garbage is never freed).
    assert gc.get_freeze_count() == 0
    with existing_objects_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), existing_objects_frozen():
        raise RuntimeError("a fault inside the batch")
    assert gc.get_freeze_count() == 0
    net = krems()
    path = straight_on(net, net.edge("w24980487:1", False), 2)
    compute_coverage(net.segments, pings(sample(Drive.along(path), interval_s=3.0),
                                         random.Random(1)))
    assert gc.get_freeze_count() == 0


def test_value_types_are_frozen() -> None:
    t = tr("s", 0, 1, 0, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.start_m = 5.0  # type: ignore[misc]


def test_a_book_without_history_fires_the_same_events_and_holds_only_open_passes() -> None:
    # The live worker's book: the same service events as a full one on a real drive,
    # but nothing kept beyond each vehicle's current pass, however long it runs.
    net = krems()
    path = straight_on(net, net.graph.edges_of("w24980487:1")[0], 8)
    drive = Drive.along(path)
    there = sample(drive, interval_s=5.0)
    back = sample(drive, start_m=drive.length, backwards=True, interval_s=5.0, t0=T0 + 600)
    fixes = pings(there + back, random.Random(3))
    full, lean = CoverageBook(net.segments), CoverageBook(net.segments, keep_history=False)
    track_a, track_b = net.matcher.track("plow-1"), net.matcher.track("plow-1")
    events_full, events_lean = [], []
    for p in fixes:
        events_full += full.add(track_a.push(p))
        events_lean += lean.add(track_b.push(p))
    events_full += full.add(track_a.flush())
    events_lean += lean.add(track_b.flush())
    assert len(events_full) >= 6 and events_lean == events_full
    assert lean._passes == {} and len(lean._open) == 1
    assert sum(len(v) for v in full._passes.values()) > len(path)
    with pytest.raises(RuntimeError, match="keeps no history"):
        lean.result()
    with pytest.raises(RuntimeError, match="keeps no history"):
        lean.passes(path[0].source_id)
