"""The device registry: which devices exist, what kind each is and the village it stands in.

Ingest resolves a point's location tags from here at the moment it arrives, so moving a device
changes only the points written after the move. A ``Registry`` is a value object, never changed:
run-time changes (``registry_changes``) build a new one from ``entries()`` and swap it in whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import NotFound, SettingsError
from .regions import RegionTree

DeviceKind = Literal["station", "yield_monitor", "grain_scale"]
DEVICE_KINDS: tuple[DeviceKind, ...] = ("station", "yield_monitor", "grain_scale")
DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Device:
    id: str
    kind: DeviceKind
    village: str
    metrics: tuple[str, ...]
    interval_s: int

    @property
    def township(self) -> str:
        return self.village[:9]

    @property
    def district(self) -> str:
        return self.village[:6]

    @property
    def village_int(self) -> int:
        return int(self.village)


class Registry:
    def __init__(self, devices: list[Device]) -> None:
        self._by_id = {d.id: d for d in devices}

    def get(self, device_id: str) -> Device:
        try:
            return self._by_id[device_id]
        except KeyError:
            raise NotFound(f"no device with id {device_id!r}") from None

    def find(self, device_id: str) -> Device | None:
        return self._by_id.get(device_id)

    def __iter__(self) -> Iterator[Device]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def under(self, region_code: str) -> list[Device]:
        return [d for d in self._by_id.values() if d.village.startswith(region_code)]

    def entries(self) -> list[dict[str, object]]:
        """The devices as registry entries (the YAML file's shape), in registry order: what a
        run-time change applies to before ``from_entries`` validates the result again."""
        return [{"id": d.id, "kind": d.kind, "village": d.village, "metrics": list(d.metrics),
                 "interval_s": d.interval_s} for d in self._by_id.values()]

    @classmethod
    def load(cls, path: Path, tree: RegionTree, metrics: set[str]) -> Registry:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"{path}: cannot read the device registry: {exc}") from None
        return cls.from_entries((doc or {}).get("devices") or [], tree, metrics, str(path))

    @classmethod
    def from_entries(cls, entries: Iterable[Mapping[str, Any]], tree: RegionTree, metrics: set[str],
                     source: str = "devices.yaml") -> Registry:
        """Validated devices from raw entries (the YAML list, or the baseline with run-time changes
        applied); SettingsError names the source, the entry and what is wrong with it."""
        devices: list[Device] = []
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            where = f"{source}: device #{i + 1}"
            try:
                dev = Device(str(entry["id"]), entry["kind"], str(entry["village"]),
                             tuple(entry.get("metrics") or ()), int(entry.get("interval_s", 600)))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise SettingsError(f"{where}: missing or wrong {exc}") from None
            if not DEVICE_ID.match(dev.id):
                raise SettingsError(f"{where}: id {dev.id!r} must match [A-Za-z0-9_-]{{1,64}}")
            if dev.id in seen:
                raise SettingsError(f"{where}: duplicate id {dev.id!r}")
            if dev.kind not in DEVICE_KINDS:
                raise SettingsError(f"{where} ({dev.id}): kind {dev.kind!r} is not one of {DEVICE_KINDS}")
            node = tree.find(dev.village)
            if node is None or node.level != "village":
                raise SettingsError(f"{where} ({dev.id}): village {dev.village!r} is not a village in the region tree")
            unknown = set(dev.metrics) - metrics
            if unknown:
                raise SettingsError(f"{where} ({dev.id}): metrics not in the catalogue: {sorted(unknown)}")
            if dev.interval_s <= 0:
                raise SettingsError(f"{where} ({dev.id}): interval_s must be positive")
            seen.add(dev.id)
            devices.append(dev)
        return cls(devices)
