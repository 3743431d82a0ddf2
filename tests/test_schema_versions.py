"""Schema versions: the store and accounts files written before versions existed (committed
fixtures, made by the code on main before issue 11) open, migrate and read back the same data;
a file from a newer version is refused with its path and both versions."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from service.auth.store import ACCOUNT_STEPS, SqliteAccounts
from service.errors import NongyunError
from service.store.sqlite import STORE_STEPS, SqliteStore

FIXTURES = Path(__file__).parent / "fixtures"
T0 = 1_717_200_000_000


def _copy(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    shutil.copy(FIXTURES / name, dest)
    return dest


def _version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_store_fixture_from_main_migrates_and_reads_the_same_data(tmp_path: Path) -> None:
    path = _copy("store-v1.sqlite3", tmp_path)
    assert _version(path) == 0
    store = SqliteStore(path, "Asia/Shanghai")
    try:
        assert store.schema_found == 0 and _version(path) == len(STORE_STEPS) >= 2
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0] == 72
            assert conn.execute("SELECT COUNT(*) FROM yields").fetchone()[0] == 2
            assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 2
            assert conn.execute("SELECT SUM(count) FROM rollup_1h").fetchone()[0] == 72
        c = store.counters()
        assert (c.received, c.accepted) == (30, 51)
        assert c.rejected == {"bad_json": 1, "out_of_range": 1, "unknown_device": 1}
        assert {(r.device, r.reason) for r in store.rejections()} == {
            ("qh-st-1", "bad_json"), ("nobody", "unknown_device"), ("qh-st-2", "out_of_range")}
        # the counts table is filled from the samples the old file kept
        assert store.rejection_counts() == {("qh-st-1", "bad_json"): 1, ("*", "unknown_device"): 1,
                                            ("qh-st-2", "out_of_range"): 1}
        alert = store.get_alert(1)
        assert alert is not None and alert.acked_by == "admin" and alert.key == "drought:211204101201"
    finally:
        store.close()
    again = SqliteStore(path, "Asia/Shanghai")  # a second open finds the current version: no steps
    assert again.schema_found == len(STORE_STEPS)
    again.close()


def test_new_store_gets_the_current_version(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    store.close()
    assert _version(tmp_path / "s.sqlite3") == len(STORE_STEPS)


def test_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = _copy("store-v1.sqlite3", tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(STORE_STEPS) + 1}")
    with pytest.raises(NongyunError) as caught:
        SqliteStore(path)
    msg = str(caught.value)
    assert str(path) in msg and f"version {len(STORE_STEPS) + 1}" in msg and f"({len(STORE_STEPS)})" in msg


def test_accounts_fixture_from_main_migrates_and_reads_the_same_data(tmp_path: Path) -> None:
    path = _copy("accounts-v1.sqlite3", tmp_path)
    assert _version(path) == 0
    accounts = SqliteAccounts(path)
    assert _version(path) == len(ACCOUNT_STEPS)
    assert sorted(a.username for a in accounts.users()) == ["admin", "village1"]
    found = accounts.user("admin")
    assert found is not None and found[1].endswith("notarealhash") and found[0].role == "admin"
    assert accounts.device_credentials() == {"qh-st-1": "$7$101$fixturesalt$fixturehash"}
    assert [t.id for t in accounts.tokens()] == ["tok1"]
    assert accounts.session_user("1" * 64, T0 + 1) is not None


def test_accounts_from_a_newer_version_are_refused(tmp_path: Path) -> None:
    path = _copy("accounts-v1.sqlite3", tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(NongyunError, match=r"schema version 99 is newer"):
        SqliteAccounts(path)
