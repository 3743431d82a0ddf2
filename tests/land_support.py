"""A config folder of the repository's district with land of the tests' own (not the demo's files)."""

from __future__ import annotations

import shutil
from pathlib import Path

from service.context import Context, build
from service.settings import load
from tests.conftest import CONFIG

SCALE, SCALE_VILLAGE = "qh-gs-101", "211204101200"  # a grain scale of 张相镇
HARVESTER = "qh-ym-101202"  # a yield monitor standing in 211204101202
ZX = "211204101"
V_FAR, V_NEAR, V_NAMED = "211204101204", "211204101202", "211204101203"
GROUPS_YAML = """groups:
  - {id: kendi-demo, name: 垦地共建示范区, kind: demo_zone}
  - {id: gbz-2024, name: 2024年高标准农田, kind: high_standard}
"""
PLOTS_YAML = f"""plots:
  - {{id: P-far, village: "{V_FAR}", name: 东岗地, area_mu: 30, groups: [kendi-demo]}}
  - {{id: P-near, village: "{V_NEAR}", area_ha: 2, groups: [gbz-2024, kendi-demo]}}
  - {{id: P-plain, village: "{V_NEAR}", area_mu: 10}}
"""


def land_config(folder: Path, groups: str | None = GROUPS_YAML, plots: str | None = PLOTS_YAML) -> Path:
    """The repository's config files without its land, plus ``groups`` and ``plots`` (None: no file)."""
    shutil.copytree(CONFIG, folder, ignore=shutil.ignore_patterns("plots.yaml", "area_groups.yaml"))
    if groups is not None:
        (folder / "area_groups.yaml").write_text(groups, encoding="utf-8")
    if plots is not None:
        (folder / "plots.yaml").write_text(plots, encoding="utf-8")
    return folder


def land_ctx(tmp_path: Path, **overrides: object) -> Context:
    folder = land_config(tmp_path / "config")
    return build(load(folder, env={}, overrides={"store.data_dir": str(tmp_path / "data"), "web.auth": "off",
                                                 **overrides}))
