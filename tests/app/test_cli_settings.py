"""A wrong setting in the environment stops a command with its name, not a traceback."""

from __future__ import annotations

import pytest

from app.cli import main


@pytest.mark.parametrize(("name", "value", "says"), [
    ("PLOWSHARE_COVERAGE_MATCH", '{"beta_m": 1}', "'beta_m' is not a matcher setting"),
    ("PLOWSHARE_COVERAGE_MATCH", '{"map_gap_m": 99}', "map_gap_m must be between 0 and 50"),
    ("PLOWSHARE_COVERAGE_MATCH", "not json", 'field "match"'),
    ("PLOWSHARE_HTTP_PORT", "eighty", "ServerSettings port"),
])
def test_a_bad_setting_is_exit_2_with_its_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str,
    value: str, says: str,
) -> None:
    monkeypatch.setenv(name, value)
    # A command that ends by itself were the setting (wrongly) taken: a failure then,
    # not a test that hangs.
    assert main(["towns", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plowshare: bad setting: ") and says in err, err
    assert "Traceback" not in err
