"""Build steps pyproject.toml cannot express: the dashboards' ECharts and the packaged default config.

ECharts is an npm package and nothing third-party is committed to git, so every build of nongyun
(``pip install -e .``, a wheel, an sdist) puts the one file the pages load, ``echarts.min.js``, into
``service/web/static/vendor/`` at the exact version and sha512 that ``package-lock.json`` records. The
user never runs npm: the file is taken from ``node_modules/`` when ``npm ci`` already ran, else from
the tarball ``npm pack`` fetches from npm's configured registry (or ``$npm_config_registry`` without
npm), checked against the lockfile's integrity hash either way. An sdist carries the file, so a wheel
built from it needs neither npm nor a network.

A wheel also carries ``config/`` as ``service/default_config/``: the district's region tree, device
registry and catalogue, used when no ``config/`` folder is at hand (service/config_files.py), so an
installed ``nongyun demo`` runs from any folder.

Set ``NONGYUN_REQUIRE_ASSETS=1`` to make a missing ECharts fail the build (the Dockerfile does);
otherwise the build warns and the pages say in words that charts cannot be drawn.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
VENDOR = ROOT / "service" / "web" / "static" / "vendor"
STAMP = VENDOR / "versions.json"
# npm package → (file inside its tarball's package/ folder, name served under static/vendor)
ASSETS = {"echarts": ("dist/echarts.min.js", "echarts.min.js")}


class AssetError(RuntimeError):
    pass


def _locked(name: str) -> tuple[str, str]:
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    entry = lock["packages"][f"node_modules/{name}"]
    return entry["version"], entry["integrity"]


def _check(data: bytes, integrity: str, what: str) -> None:
    algo, _, expected = integrity.partition("-")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != expected:
        raise AssetError(f"{what}: {algo} {got} does not match package-lock.json's {expected}")


def _tarball(name: str, version: str) -> bytes:
    npm = shutil.which("npm")
    if npm:
        with tempfile.TemporaryDirectory() as tmp:
            run = subprocess.run([npm, "pack", f"{name}@{version}", "--pack-destination", tmp, "--silent"],
                                 capture_output=True, text=True, timeout=300, check=False)
            found = sorted(Path(tmp).glob("*.tgz"))
            if run.returncode == 0 and found:
                return found[0].read_bytes()
            raise AssetError(f"npm pack {name}@{version} failed: {run.stderr.strip()[-500:]}")
    registry = next((os.environ[k] for k in ("npm_config_registry", "NPM_CONFIG_REGISTRY") if os.environ.get(k)), "")
    if registry:
        url = f"{registry.rstrip('/')}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
        with urllib.request.urlopen(url, timeout=120) as resp:
            return bytes(resp.read())
    raise AssetError("neither npm nor $npm_config_registry is available to fetch it")


def _from_tarball(data: bytes, member: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        extracted = tar.extractfile(f"package/{member}")
        if extracted is None:
            raise AssetError(f"the tarball has no package/{member}")
        return extracted.read()


def _one(name: str, member: str, served: str, stamp: dict[str, str]) -> str:
    version, integrity = _locked(name)
    target = VENDOR / served
    if target.is_file() and stamp.get(name) == version:
        return f"{name} {version}: already in {target.relative_to(ROOT)}"
    installed = ROOT / "node_modules" / name
    if (installed / "package.json").is_file() and (installed / member).is_file() and json.loads(
            (installed / "package.json").read_text(encoding="utf-8")).get("version") == version:
        body, where = (installed / member).read_bytes(), "node_modules"
    else:
        tgz = _tarball(name, version)
        _check(tgz, integrity, f"{name}-{version}.tgz")
        body, where = _from_tarball(tgz, member), "npm registry"
    VENDOR.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    tmp.write_bytes(body)
    tmp.replace(target)
    stamp[name] = version
    return f"{name} {version}: {served} from {where}"


def ensure_assets() -> None:
    """Put every asset of ASSETS into static/vendor, or warn (or fail with NONGYUN_REQUIRE_ASSETS=1)."""
    if not (ROOT / "package-lock.json").is_file():  # an sdist without the lockfile: take what it carries
        return
    stamp: dict[str, str] = json.loads(STAMP.read_text(encoding="utf-8")) if STAMP.is_file() else {}
    for name, (member, served) in ASSETS.items():
        try:
            print(f"nongyun build: {_one(name, member, served, stamp)}")
        except (AssetError, OSError, KeyError, subprocess.SubprocessError, tarfile.TarError) as exc:
            message = (f"nongyun build: could not put {name} into the package ({exc}); "
                       "the dashboards will say that their charts cannot be drawn")
            if os.environ.get("NONGYUN_REQUIRE_ASSETS") == "1":
                raise SystemExit(message) from exc
            print(f"WARNING: {message}")
    if stamp:
        STAMP.write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n", encoding="utf-8")


class BuildPy(build_py):
    """build_py that first fetches the assets and, for a wheel, adds config/ as service/default_config."""

    def run(self) -> None:
        ensure_assets()
        self.__dict__.pop("data_files", None)  # listed before the assets existed: list them again
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's own config/ (service/config_files.py)
        source = ROOT / "config"
        if source.is_dir():
            target = Path(self.build_lib) / "service" / "default_config"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)


class Sdist(sdist):
    def run(self) -> None:
        ensure_assets()
        super().run()


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
