"""`nongyun backup` / `restore`: a backup taken while 20,000 messages flow through a real Mosquitto
into a real ingest holds exactly what was committed at its snapshot, and restores to it."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from service import backup as bk
from service.auth.store import SqliteAccounts
from service.cli import main
from service.context import Context
from service.errors import NongyunError
from service.store.sqlite import STORE_STEPS, SqliteStore
from service.times import now_ms
from tests.brokers import Mosquitto
from tests.test_ingest import STATION, Publisher, publisher, reading, running_ingest, settled, wait_for  # noqa: F401

FLOW = 20_000


def _data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    accounts = SqliteAccounts.in_dir(data)
    accounts.set_device_credential(STATION, "$7$101$salt$hash", 1)
    (data / bk.SECRET_FILE).write_text("k" * 64)
    return data


def test_a_backup_while_20000_messages_flow_restores_exactly_the_committed_counts(
        ctx: Context, mosquitto: Mosquitto, tmp_path: Path, publisher: Publisher) -> None:  # noqa: F811
    data = _data_dir(tmp_path)
    store = SqliteStore(data / bk.STORE_FILE)
    now = now_ms()
    sender = threading.Thread(target=lambda: [
        publisher.send(f"nongyun/v1/{STATION}/telemetry", reading(now - 1000 * (i + 1), soil_moisture=1.0 + i % 90))
        for i in range(FLOW)])
    try:
        with running_ingest(ctx, mosquitto, store) as ingest:
            sender.start()
            wait_for(lambda: store.counters().accepted >= 2_000, timeout=60, what="the flow under way")
            started = time.monotonic()
            manifest = bk.backup(data, tmp_path / "bk")
            took = time.monotonic() - started
            live_after_backup = store.counters().accepted
            sender.join()
            publisher.flush()
            wait_for(settled(ingest, FLOW), timeout=180, what="all 20,000 committed")
        counts = manifest["files"][bk.STORE_FILE]["counts"]
        # one value per message: the snapshot's readings, accepted and received counters agree,
        # so it holds whole batches only, and it was taken mid-flow
        assert counts["readings"] == counts["counter_accepted"] == counts["counter_received"]
        assert 2_000 <= counts["readings"] <= live_after_backup
        live = bk.store_counts(data / bk.STORE_FILE)
        assert live["readings"] == live["counter_accepted"] == FLOW  # nothing lost by the backup
    finally:
        store.close()
    restored = tmp_path / "restored"
    bk.restore(tmp_path / "bk", restored)
    assert bk.store_counts(restored / bk.STORE_FILE) == counts
    opened = SqliteStore(restored / bk.STORE_FILE)
    assert opened.counters().accepted == counts["readings"]
    opened.close()
    assert SqliteAccounts.in_dir(restored).device_credentials() == {STATION: "$7$101$salt$hash"}
    assert (restored / bk.SECRET_FILE).read_text() == "k" * 64
    print(f"backup mid-flow: {counts['readings']:,} of {FLOW:,} committed at the snapshot "
          f"({live_after_backup:,} just after), {took * 1000:.0f} ms; restored the same counts")


def test_restore_refuses_a_non_empty_folder_a_newer_schema_and_a_damaged_copy(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    SqliteStore(data / bk.STORE_FILE).close()
    bk.backup(data, tmp_path / "bk")
    with pytest.raises(bk.BackupError, match="not empty"):
        bk.backup(data, tmp_path / "bk")
    with pytest.raises(bk.BackupError, match=r"not empty.*--force"):
        bk.restore(tmp_path / "bk", data)
    bk.restore(tmp_path / "bk", data, force=True)
    newer = tmp_path / "newer"
    bk.backup(data, newer)
    with sqlite3.connect(newer / bk.STORE_FILE) as conn:
        conn.execute(f"PRAGMA user_version = {len(STORE_STEPS) + 1}")
    manifest = json.loads((newer / bk.MANIFEST).read_text())
    manifest["files"][bk.STORE_FILE]["schema_version"] = len(STORE_STEPS) + 1
    (newer / bk.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(NongyunError, match="newer than this nongyun"):
        bk.restore(newer, tmp_path / "empty")
    damaged = tmp_path / "damaged"
    bk.backup(data, damaged)
    with sqlite3.connect(damaged / bk.STORE_FILE) as conn:
        conn.execute("INSERT INTO counters VALUES ('x', 'received', 5)")
    with pytest.raises(bk.BackupError, match="counts differ"):
        bk.restore(damaged, tmp_path / "empty2")
    assert not (tmp_path / "empty").exists() and not (tmp_path / "empty2").exists()


def test_the_cli_backs_up_and_restores(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    SqliteStore(data / bk.STORE_FILE).close()
    run = CliRunner()
    out = run.invoke(main, ["backup", "--out", str(tmp_path / "bk")], env={"NONGYUN_DATA_DIR": str(data)})
    assert out.exit_code == 0, out.output
    assert json.loads((tmp_path / "bk" / bk.MANIFEST).read_text())["files"][bk.STORE_FILE]["schema_version"] == \
        len(STORE_STEPS)
    again = run.invoke(main, ["restore", str(tmp_path / "bk")], env={"NONGYUN_DATA_DIR": str(data)})
    assert again.exit_code != 0 and "--force" in again.output
    forced = run.invoke(main, ["restore", "--force", str(tmp_path / "bk")], env={"NONGYUN_DATA_DIR": str(data)})
    assert forced.exit_code == 0, forced.output
