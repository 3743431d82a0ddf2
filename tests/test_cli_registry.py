"""`nongyun devices|plots add|move|retire`: refusals are one clear line and exit 1, never a
traceback; accepted changes are in the next process's registry, logged with who and when."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.auth import SqliteAccounts
from service.broker_config import verify_mosquitto_hash
from service.cli import main
from service.context import build
from service.regions import RegionTree
from service.registry_changes import ChangeLog
from service.settings import load
from tests.conftest import CONFIG

VILLAGE, OTHER = "211204101203", "211204101204"
TREE = RegionTree.load(CONFIG / "regions.yaml")


@pytest.fixture
def run(tmp_path: Path) -> object:
    env = {"NONGYUN_CONFIG": str(CONFIG), "NONGYUN_DATA_DIR": str(tmp_path / "data"), "NONGYUN_LOG_LEVEL": "ERROR"}

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=env)

    invoke.data = tmp_path / "data"  # type: ignore[attr-defined]
    return invoke


def refused(result: Result, words: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: ") and words in lines[-1], result.output
    assert "Traceback" not in result.output


def test_device_add_issues_a_credential_and_the_next_process_sees_it(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ok = run("devices", "add", "cli-st-1", "--kind", "station", "--village", VILLAGE, "--metric", "soil_moisture")
    assert ok.exit_code == 0, ok.output
    device, password = ok.stdout.splitlines()[0].split("\t")
    stored = SqliteAccounts.in_dir(run.data).device_credentials()[device]
    assert verify_mosquitto_hash(stored, password) and password not in stored
    ctx = build(load(CONFIG, env={}, overrides={"store.data_dir": str(run.data)}))
    assert ctx.registry.get("cli-st-1").village == VILLAGE
    (change,) = ChangeLog.in_dir(run.data).changes()
    assert (change.target, change.op, change.entity) == ("device", "add", "cli-st-1") and change.by.startswith("cli:")


def test_device_errors_are_one_line(run) -> None:  # type: ignore[no-untyped-def]
    refused(run("devices", "add", "x-1", "--kind", "station", "--village", "999999999999"), "unknown village")
    refused(run("devices", "add", "qh-st-101203-1", "--kind", "station", "--village", VILLAGE), "duplicate id")
    refused(run("devices", "add", "x-1", "--kind", "station", "--village", VILLAGE, "--metric", "nope"),
            "not in the catalogue")
    refused(run("devices", "add", "bad/id", "--kind", "station", "--village", VILLAGE), "must match")
    refused(run("devices", "retire", "no-such-device"), "unknown device")
    refused(run("devices", "move", "no-such-device", "--village", VILLAGE), "unknown device")
    refused(run("devices", "move", "qh-st-101203-1", "--village", "2112041012"), "unknown village")
    refused(run("devices", "move", "qh-st-101203-1", "--village", VILLAGE), "already")
    assert ChangeLog.in_dir(run.data).head() == 0  # nothing refused was logged


def test_plot_errors_are_one_line(run) -> None:  # type: ignore[no-untyped-def]
    assert run("plots", "add", "cli-p-1", "--village", VILLAGE, "--area-mu", "12").exit_code == 0
    refused(run("plots", "add", "cli-p-1", "--village", VILLAGE, "--area-mu", "12"), "duplicate id")
    refused(run("plots", "add", "cli-p-2", "--village", "12", "--area-mu", "12"), "unknown village")
    refused(run("plots", "add", "cli-p-2", "--village", VILLAGE, "--area-mu", "-1"), "must be > 0")
    refused(run("plots", "add", "cli-p-2", "--village", VILLAGE, "--area-mu", "1", "--group", "nope"), "groups")
    refused(run("plots", "add", "cli-p-2", "--village", VILLAGE), "exactly one")
    refused(run("plots", "retire", "no-such-plot"), "unknown plot")
    assert run("plots", "move", "cli-p-1", "--village", OTHER).exit_code == 0
    assert run("plots", "retire", "cli-p-1").exit_code == 0
    refused(run("plots", "retire", "cli-p-1"), "unknown plot")
    ops = [(c.op, c.body.get("village")) for c in ChangeLog.in_dir(run.data).changes()]
    assert ops == [("add", VILLAGE), ("move", OTHER), ("retire", None)]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(village=st.text(alphabet="0123456789x ", min_size=0, max_size=14))
def test_any_village_text_is_accepted_only_when_it_is_a_village(run, village: str) -> None:  # type: ignore[no-untyped-def]
    node = TREE.find(village)
    is_village = node is not None and node.level == "village"
    result = run("devices", "move", "qh-st-101203-1", "--village", village)
    if is_village and village != VILLAGE:
        assert result.exit_code == 0, result.output
        assert run("devices", "move", "qh-st-101203-1", "--village", VILLAGE).exit_code == 0
    else:
        assert result.exit_code in (1, 2) and "Traceback" not in result.output
