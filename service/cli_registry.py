"""``nongyun devices|plots add|move|retire|list``: registry changes every running process picks up
within ``NONGYUN_REGISTRY_POLL_S`` seconds (registry_changes.py), without a restart.

A refused change is one line on stderr and exit code 1 (unknown village, duplicate id, an unknown
device to move or retire), never a traceback. ``devices add`` issues the device's broker credential:
its password is printed once on stdout and only its hash is kept; with ``--broker-dir`` the broker's
files are rewritten too, and Mosquitto must then reload them (restart, or SIGHUP for passwd/acl).
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import click

from . import process
from .errors import BadInput

ME = f"cli:{getpass.getuser()}"


def _live() -> tuple[Any, Any]:
    ctx = process.context()
    assert ctx.live is not None
    return ctx, ctx.live


def _run(fn: Any, *args: Any) -> Any:
    from .times import now_ms

    try:
        return fn(*args, ME, now_ms())
    except BadInput as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def devices() -> None:
    """Devices added, moved or retired at run time (config/devices.yaml stays the baseline)."""


@devices.command("list")
def devices_list() -> None:
    """Every device in force (baseline + run-time changes)."""
    ctx, _ = _live()
    for d in sorted(ctx.registry, key=lambda d: d.id):
        click.echo(f"{d.id:24} {d.kind:14} {d.village}")


@devices.command("add")
@click.argument("device_id")
@click.option("--kind", type=click.Choice(["station", "yield_monitor", "grain_scale"]), required=True)
@click.option("--village", required=True, help="12-digit village code")
@click.option("--metric", "metrics", multiple=True, help="a catalogue metric it reports (repeat)")
@click.option("--interval", "interval_s", default=600, show_default=True, help="reporting interval, seconds")
@click.option("--broker-dir", type=click.Path(file_okay=False), default=None,
              help="the broker's auth folder (as for broker-config --out): rewrite its files too")
def devices_add(device_id: str, kind: str, village: str, metrics: tuple[str, ...], interval_s: int,
                broker_dir: str | None) -> None:
    """Register a device and issue its broker credential (printed once: DEVICE, TAB, password)."""
    from . import broker_config as bc
    from .auth import SqliteAccounts
    from .times import now_ms

    ctx, live = _live()
    entry = {"id": device_id, "kind": kind, "village": village, "metrics": list(metrics), "interval_s": interval_s}
    _run(live.add_device, entry)
    store = SqliteAccounts.in_dir(ctx.settings.data_dir)
    if broker_dir:
        user_name = ctx.settings.mqtt.username or "nongyun"
        services = bc.ServiceUsers((ctx.settings.values.mqtt_client_id,), "nongyun-jobs", user_name)
        password = bc.issue_device_credential(Path(broker_dir), live.devices, store, device_id, now_ms(),
                                              user_name, ctx.settings.values.mqtt_shared_group or "nongyun", services)
        note = f"rewrote the broker files in {broker_dir}: restart the broker (or SIGHUP it) to load them"
    else:
        from .registry_changes import new_device_credential

        password = new_device_credential(ctx.settings.data_dir, device_id, now_ms())
        note = "run `nongyun broker-config --out DIR` and reload the broker so it accepts the credential"
    click.echo(f"{device_id}\t{password}")
    click.echo(f"added {device_id} ({kind}) in village {village}; its credential is shown above, only now; {note}",
               err=True)


@devices.command("move")
@click.argument("device_id")
@click.option("--village", required=True, help="12-digit code of the village it stands in from now on")
def devices_move(device_id: str, village: str) -> None:
    """Move a device: its stored history stays in the village it was measured in."""
    _, live = _live()
    old = _run(live.move_device, device_id, village)
    click.echo(f"moved {device_id}: {old} → {village} (earlier readings stay in {old})")


@devices.command("retire")
@click.argument("device_id")
def devices_retire(device_id: str) -> None:
    """Retire a device: its messages are rejected (unknown_device) from now on; history stays."""
    _, live = _live()
    _run(live.retire_device, device_id)
    click.echo(f"retired {device_id}; `nongyun broker-config --out DIR` drops its broker credential")


@click.group()
def plots() -> None:
    """Plots (地块) added, moved or retired at run time (config/plots.yaml stays the baseline)."""


@plots.command("list")
def plots_list() -> None:
    """Every plot in force (baseline + run-time changes)."""
    ctx, _ = _live()
    for p in ctx.land:
        click.echo(f"{p.id:24} {p.village} {p.area_ha * 15:10.1f} 亩  {p.name}  {','.join(p.groups)}")


@plots.command("add")
@click.argument("plot_id")
@click.option("--village", required=True, help="12-digit village code")
@click.option("--area-mu", type=float, default=None, help="area in 亩")
@click.option("--area-ha", type=float, default=None, help="area in hectares (instead of --area-mu)")
@click.option("--name", default="", help="display name")
@click.option("--group", "groups", multiple=True, help="an area group id it belongs to (repeat)")
def plots_add(plot_id: str, village: str, area_mu: float | None, area_ha: float | None, name: str,
              groups: tuple[str, ...]) -> None:
    """Register a plot; yield records may name it from now on."""
    if (area_mu is None) == (area_ha is None):
        raise click.ClickException("give exactly one of --area-mu and --area-ha")
    _, live = _live()
    entry: dict[str, Any] = {"id": plot_id, "village": village, "name": name, "groups": list(groups)}
    entry["area_mu" if area_mu is not None else "area_ha"] = area_mu if area_mu is not None else area_ha
    _run(live.add_plot, entry)
    click.echo(f"added plot {plot_id} in village {village}")


@plots.command("move")
@click.argument("plot_id")
@click.option("--village", required=True)
def plots_move(plot_id: str, village: str) -> None:
    """Attribute a plot to another village (a boundary correction): records from now on count there."""
    _, live = _live()
    old = _run(live.move_plot, plot_id, village)
    click.echo(f"moved plot {plot_id}: {old} → {village}")


@plots.command("retire")
@click.argument("plot_id")
def plots_retire(plot_id: str) -> None:
    """Retire a plot: records naming it are rejected (unknown_plot) from now on; history stays."""
    _, live = _live()
    _run(live.retire_plot, plot_id)
    click.echo(f"retired plot {plot_id}")
