"""Which config folder a process reads, and the words it uses when it cannot read one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.config_files import REQUIRED, packaged
from service.context import build
from service.errors import SettingsError
from service.settings import load
from tests.conftest import CONFIG

NONGYUN = Path(sys.executable).parent / "nongyun"


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NONGYUN_")}
    return subprocess.run([str(NONGYUN), *args], cwd=cwd, env=clean | env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_an_installation_carries_the_default_district() -> None:
    folder = packaged()
    assert folder is not None and all((folder / name).is_file() for name in REQUIRED)


def test_without_config_folder_the_packaged_district_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load(env={})
    assert settings.config_source == "packaged default"
    ctx = build(settings)
    assert ctx.tree.district.code == "211204" and len(ctx.registry) > 0


def test_a_local_config_folder_wins_over_the_packaged_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(CONFIG, tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    settings = load(env={})
    assert (settings.config_source, settings.config_dir) == ("./config", Path("config"))


def test_an_explicit_folder_that_does_not_exist_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"NONGYUN_CONFIG='.*nowhere': no such folder"):
        load(env={"NONGYUN_CONFIG": str(tmp_path / "nowhere")})


def test_an_explicit_folder_missing_files_says_which(tmp_path: Path) -> None:
    (tmp_path / "regions.yaml").write_text((CONFIG / "regions.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(SettingsError, match=r"the folder has no devices\.yaml, catalogue\.toml"):
        load(env={"NONGYUN_CONFIG": str(tmp_path)})


def test_a_bad_region_tree_names_the_folder_and_where_it_came_from(tmp_path: Path) -> None:
    shutil.copytree(CONFIG, tmp_path / "cfg")
    (tmp_path / "cfg" / "regions.yaml").write_text("- [unclosed", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"cannot read the region tree(.|\n)*from \$NONGYUN_CONFIG"):
        build(load(env={"NONGYUN_CONFIG": str(tmp_path / "cfg")}))


def test_the_command_runs_from_any_folder_and_says_which_config_it_reads(tmp_path: Path) -> None:
    out = _cli("settings", cwd=tmp_path, env={})
    assert out.returncode == 0, out.stderr
    assert "packaged default" in out.stdout.splitlines()[0]
    bad = _cli("settings", cwd=tmp_path, env={"NONGYUN_CONFIG": str(tmp_path / "missing")})
    assert bad.returncode == 2 and "NONGYUN_CONFIG=" in bad.stderr and "no such folder" in bad.stderr
