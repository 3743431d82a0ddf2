"""Which config folder a process reads: ``$NONGYUN_CONFIG``, else ``./config``, else the package's own.

An installed nongyun carries its default district (清河区: region tree, device registry, catalogue,
targets, alert rules) so ``nongyun demo`` runs from any folder; a county's deployment points
``NONGYUN_CONFIG`` at its own files. A folder named explicitly that cannot be used is an error that
names the setting, never a silent fallback to the default district.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import SettingsError

REQUIRED = ("regions.yaml", "devices.yaml", "catalogue.toml")
ENV = "NONGYUN_CONFIG"
_PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ConfigFolder:
    path: Path
    source: str  # where the choice came from, for messages: "$NONGYUN_CONFIG", "./config", ...


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED)


def packaged() -> Path | None:
    """The wheel's ``service/default_config`` (setup.py), or a source checkout's own ``config/``."""
    for candidate in (_PACKAGE / "default_config", _PACKAGE.parent / "config"):
        if _complete(candidate) and (candidate.name == "default_config"
                                     or (_PACKAGE.parent / "pyproject.toml").is_file()):
            return candidate
    return None


def locate(explicit: str | Path | None, env: Mapping[str, str]) -> ConfigFolder:
    if explicit is not None:
        return ConfigFolder(Path(explicit), "argument")
    if ENV in env:
        folder = Path(env[ENV])
        if not folder.is_dir():
            raise SettingsError(f"{ENV}={env[ENV]!r}: no such folder (it must hold {', '.join(REQUIRED)}); "
                                f"unset {ENV} to use the district the package carries")
        missing = [name for name in REQUIRED if not (folder / name).is_file()]
        if missing:
            raise SettingsError(f"{ENV}={env[ENV]!r}: the folder has no {', '.join(missing)}")
        return ConfigFolder(folder, f"${ENV}")
    local = Path("config")
    if _complete(local):
        return ConfigFolder(local, "./config")
    default = packaged()
    if default is None:
        raise SettingsError(f"no config folder: ./config has no {', '.join(REQUIRED)} and this installation "
                            f"carries no default; set {ENV} to a folder that holds them")
    return ConfigFolder(default, "packaged default")
