"""`nongyun backup`, `restore` and `migrate`: moving a deployment's data, with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from . import process
from .errors import NongyunError
from .store.base import InRegion, JobsStore


@click.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="a new (or empty) folder to write the backup into")
def backup(out: str) -> None:
    """Back up the data folder (store, accounts and device credential hashes, secret key) while
    ingest runs: each SQLite file is one consistent snapshot. InfluxDB data: see the README."""
    from .backup import backup as run

    ctx = process.context()
    with click.progressbar(length=4, label="backing up") as bar:
        manifest = run(Path(ctx.settings.data_dir), Path(out), progress=lambda _name: bar.update(1))
    counts = manifest["files"].get("nongyun.sqlite3", {}).get("counts", {})
    click.echo(f"backed up {', '.join(manifest['files'])} into {out}; "
               f"{counts.get('readings', 0):,} reading values, {counts.get('yields', 0):,} yields")


@click.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.option("--force", is_flag=True, help="replace a data folder that is not empty (stop every process first)")
def restore(src: str, force: bool) -> None:
    """Restore a backup made by `nongyun backup` into the data folder."""
    from .backup import read_manifest
    from .backup import restore as run

    ctx = process.context()
    files = len(read_manifest(Path(src))["files"])
    with click.progressbar(length=files, label="restoring") as bar:
        run(Path(src), Path(ctx.settings.data_dir), force=force, progress=lambda _name: bar.update(1))
    click.echo(f"restored {files} files into {ctx.settings.data_dir}")


@click.command()
@click.option("--source", "source_dir", type=click.Path(file_okay=False), default=None,
              help="data folder of the embedded store to copy (default: store.data_dir)")
@click.option("--batch", default=20_000, show_default=True, help="records per write")
def migrate(source_dir: str | None, batch: int) -> None:
    """Copy the embedded store's points and alerts into the configured InfluxDB (NONGYUN_STORE=influxdb).

    The source is opened read-only (``mode=ro``) in the configured zone, so it is never changed.
    Idempotent: a point written again replaces itself, an alert already copied is skipped, so an
    interrupted copy is simply run again."""
    from .store.sqlite import SqliteStore

    ctx = process.context()
    if ctx.settings.store != "influxdb":
        raise click.ClickException("set NONGYUN_STORE=influxdb and INFLUXDB_V2_* to migrate into InfluxDB")
    path = Path(source_dir or ctx.settings.data_dir) / "nongyun.sqlite3"
    if not path.exists():
        raise click.ClickException(f"no embedded store at {path}")
    try:
        source = SqliteStore(path, ctx.settings.tz, read_only=True)
    except NongyunError as exc:
        raise click.ClickException(str(exc)) from exc
    target = process.open_store(ctx)
    copied = alerts = 0
    try:
        with click.progressbar(length=1, label="migrating", show_pos=True) as bar:
            for part, done, total in source.export_batches(batch):
                bar.length = max(total, 1)
                target.write(part)
                bar.update(done - bar.pos)
                copied = done
        alerts = copy_alerts(source, cast(JobsStore, target), InRegion("district", ctx.tree.district.code))
    finally:
        target.close()
        source.close()
    click.echo(f"copied {copied:,} records and {alerts:,} alerts from {path} into {target.name}")


def copy_alerts(src: JobsStore, dst: JobsStore, everywhere: InRegion) -> int:
    """Alerts oldest first, with their acknowledgement and clearing; one already there (same key and
    raise time) is skipped, so running it again copies nothing twice. Returns how many were copied."""
    have = {(a.key, a.raised_at) for a in dst.list_alerts(everywhere, None, 1_000_000)}
    copied = 0
    for a in reversed(src.list_alerts(everywhere, None, 1_000_000)):
        if (a.key, a.raised_at) in have:
            continue
        opened = dst.open_alert(a)
        if opened is None:
            continue  # the target already has an active alert of this key
        if a.acked_at is not None:
            dst.ack_alert(opened.id, a.acked_by or "", a.acked_at)
        if a.cleared_at is not None:
            dst.clear_alert(a.key, a.cleared_at)
        copied += 1
    return copied
