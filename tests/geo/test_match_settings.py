"""The matcher knobs a deployment or a town may change, and nothing else."""

from __future__ import annotations

import math

import pytest

from geo.matchtypes import SETTABLE, MatchConfig


def test_a_change_is_applied_and_whole_numbers_stay_whole() -> None:
    base = MatchConfig()
    changed = base.changed({"map_gap_m": 0, "lag": 12.0, "sigma_m": 6.5})
    assert (changed.map_gap_m, changed.lag, changed.sigma_m) == (0, 12, 6.5)
    assert isinstance(changed.lag, int)
    assert changed.beta_m == base.beta_m  # the rest as they were
    assert base.changed({}) == base
    # Every settable knob is a field, and its default lies within its range.
    for name, (lo, hi) in SETTABLE.items():
        assert lo <= getattr(base, name) <= hi, name


@pytest.mark.parametrize(("changes", "says"), [
    ({"beta_m": 3.0}, "'beta_m' is not a matcher setting"),
    ({"map_gap_m": -1}, "map_gap_m must be between 0 and 50"),
    ({"lag": 0}, "lag must be between 1 and 50"),
    ({"lag": 7.5}, "lag must be a whole number"),
    ({"sigma_m": math.nan}, "sigma_m must be between"),
    ({"sigma_m": math.inf}, "sigma_m must be between"),
    ({"sigma_m": True}, "sigma_m must be a number"),
    ({"sigma_m": "6"}, "sigma_m must be a number"),
])
def test_a_bad_change_names_the_knob(changes: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        MatchConfig().changed(changes)
