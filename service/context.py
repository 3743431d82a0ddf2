"""What every process is built from: settings, region tree, device registry, catalogue and land.

One factory (``build``) so web workers, ingest workers, the jobs runner and the tests all read
config/ the same way and fail at start-up, not at the first message, when something is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .catalogue import Catalogue
from .errors import SettingsError
from .jobs.config import AlertsConfig
from .land import Land
from .regions import RegionTree
from .registry import Registry
from .registry_changes import ChangeLog, LiveRegistries
from .settings import Settings, load
from .soils import Soils
from .targets import Targets


@dataclass(frozen=True)
class Context:
    settings: Settings
    tree: RegionTree
    registry: Registry
    catalogue: Catalogue
    # Read here, at start, like the files above: a bad file stops the process, never a request.
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    targets: Targets = field(default_factory=lambda: Targets.empty())
    # Plots and area groups (config/plots.yaml, area_groups.yaml). A value object: a run-time
    # registry swaps it whole (``dataclasses.replace(ctx, land=...)`` or its own holder).
    land: Land = field(default_factory=Land.empty)
    # Run-time registry changes (registry_changes.py): swaps ``registry`` and ``land`` above in place
    # when the change log moves; None for a Context built by hand (tests), which stays as built.
    live: LiveRegistries | None = None
    # Soil parameters and 墒情 thresholds (config/soils.toml).
    soils: Soils = field(default_factory=Soils)


def build(settings: Settings | None = None) -> Context:
    settings = settings or load()
    cfg = Path(settings.config_dir)
    try:
        tree = RegionTree.load(cfg / "regions.yaml")
        catalogue = Catalogue.load(cfg / "catalogue.toml")
        registry = Registry.load(cfg / "devices.yaml", tree, set(catalogue.metrics))
        alerts = AlertsConfig.load(cfg / "alerts.toml", catalogue)
        targets = Targets.load(cfg / "targets.toml", tree)
        land = Land.load(cfg, tree)
        soils = Soils.load(cfg / "soils.toml", tree, registry)
    except SettingsError as exc:
        raise SettingsError(f"{exc}\n  (config folder {cfg}, from {settings.config_source}; "
                            "NONGYUN_CONFIG names another)") from None
    live = LiveRegistries(ChangeLog.in_dir(settings.data_dir), tree, set(catalogue.metrics), registry, land)
    live.refresh()  # the changes made so far are in force from the start
    ctx = Context(settings, tree, live.devices, catalogue, alerts, targets, live.land, live, soils)
    live.subscribe(lambda devices, land: _swap(ctx, devices, land))
    return ctx


def _swap(ctx: Context, devices: Registry, land: Land) -> None:
    """The one sanctioned change of a Context: the current registries, each one reference
    assignment (atomic), so every part of a process holding ``ctx`` reads the new ones."""
    object.__setattr__(ctx, "registry", devices)
    object.__setattr__(ctx, "land", land)
