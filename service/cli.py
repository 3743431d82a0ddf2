"""The ``nongyun`` command: one entry point per process kind of DESIGN.md "Running it".

Every command builds from the same settings and config (``context.build``), so a bad setting fails
here with a precise message before anything connects. Imports are local to each command: ``nongyun
web`` never imports paho, ``nongyun ingest`` never imports Flask.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import click

from . import process
from .errors import NongyunError, SettingsError
from .settings import redact_url


class _Group(click.Group):
    """Turns our configuration errors into one readable line and exit code 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            click.echo(f"nongyun: {exc}", err=True)
            sys.exit(2)
        except NongyunError as exc:
            click.echo(f"nongyun: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="nongyun")
def main() -> None:
    """农云 nongyun: agricultural digital-village monitoring (MQTT → store → dashboards and REST API)."""


@main.command()
def serve() -> None:
    """Ingest, web and jobs in one process (a small deployment, or a laptop)."""
    ctx = process.context()
    store = process.open_store(ctx)
    host, port = ctx.settings.http
    with process.until_signal() as stop, ExitStack() as stack:
        stack.callback(store.close)
        process.start_all(ctx, store, stack)
        click.echo(f"nongyun serving on http://{host}:{port}/ (ingest from {redact_url(ctx.settings.values.mqtt_url)})")
        stop.wait()


@main.command()
def ingest() -> None:
    """An ingest worker: MQTT → store. Several share the load with mqtt.shared_group set."""
    ctx = process.context()
    store = process.open_store(ctx)
    with process.until_signal() as stop:
        worker = process.start_ingest(ctx, store)
        click.echo(f"nongyun ingest: {redact_url(ctx.settings.values.mqtt_url)} → {store.name}")
        stop.wait()
        worker.stop()
        store.close()


@main.command()
@click.option("--workers", default=0, show_default=True,
              help="run under gunicorn with this many worker processes (0: one threaded process)")
def web(workers: int) -> None:
    """The web app alone, stateless: never starts ingest or jobs, so it scales by processes."""
    ctx = process.context()
    host, port = ctx.settings.http
    process.warn_missing_assets()
    if workers > 0:
        import os
        import shutil

        gunicorn = shutil.which("gunicorn")
        if gunicorn is None:
            raise click.ClickException("--workers needs gunicorn: pip install 'nongyun[deploy]'")
        # gthread workers: idle keep-alive connections wait in a poller, not in a thread; a request
        # that does not arrive whole within the timeout is dropped (behind nginx, which buffers
        # requests, slow clients never reach a worker at all).
        os.execv(gunicorn, [gunicorn, "--workers", str(workers), "--worker-class", "gthread",
                            "--threads", str(process.WEB_THREADS), "--timeout", str(process.CHANNEL_TIMEOUT_S),
                            "--keep-alive", "5", "--limit-request-line", "8190", "--bind", f"{host}:{port}",
                            "--access-logfile", "-", "service.web:wsgi_app()"])
    store = process.open_store(ctx)
    with process.until_signal() as stop:
        server = process.web_server(ctx, store, host, port)
        click.echo(f"nongyun web on http://{host}:{port}/")
        stop.wait()
        server.shutdown()
        store.close()


@main.command()
def jobs() -> None:
    """The scheduled jobs (rollups, station health, alerts): run exactly one per deployment."""
    ctx = process.context()
    store = process.open_store(ctx)
    with process.until_signal() as stop:
        runner = process.start_jobs(ctx, store)
        if runner is None:
            raise click.ClickException("this build has no jobs module")
        click.echo("nongyun jobs running")
        stop.wait()
        runner.shutdown()
        store.close()


@main.command()
@click.option("--url", help="broker URL (default: mqtt.url setting)")
@click.option("--speed", default=1.0, show_default=True, help="simulated seconds per real second")
@click.option("--seed", default=2026, show_default=True, help="random seed of the district's weather")
def simulate(url: str | None, speed: float, seed: int) -> None:
    """Publish the district's devices live over MQTT, as the real ones do."""
    from sensors.simulator import District

    ctx = process.context()
    district = District(ctx, seed=seed)
    with process.until_signal() as stop:
        click.echo(f"simulating {len(ctx.registry)} devices → {redact_url(url or ctx.settings.values.mqtt_url)}")
        district.run_live(url or ctx.settings.values.mqtt_url, speed=speed, stop_event=stop)


@main.command()
@click.option("--days", default=None, type=int, help="history to backfill (default: since 1 April)")
@click.option("--seed", default=2026, show_default=True)
@click.option("--no-live", is_flag=True, help="backfill only; no live devices")
@click.option("--verbose", is_flag=True, help="log at the log.level setting (default: warnings only, unless "
                                              "NONGYUN_LOG_LEVEL is set)")
def demo(days: int | None, seed: int, no_live: bool, verbose: bool) -> None:
    """Everything on one machine: embedded store, a broker, simulated devices with a season of history."""
    import logging
    import os

    from .demo import run_demo

    ctx = process.context()
    if not verbose and "NONGYUN_LOG_LEVEL" not in os.environ:
        # the broker's and the jobs' INFO lines (hundreds in the first seconds) would bury the URL
        logging.getLogger().setLevel(logging.WARNING)
    notes: list[str] = []
    if ctx.settings.values.web_auth == "required":
        from .auth import open_accounts
        from .auth.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, ensure_demo_accounts
        from .times import now_ms

        ensure_demo_accounts(open_accounts(ctx.settings.data_dir, ctx.tree), now_ms())
        notes.append(f"demo accounts (password {DEMO_PASSWORD}):")
        notes += [f"  {d.username:14} {d.note_zh}" for d in DEMO_ACCOUNTS]
    run_demo(ctx, days=days, seed=seed, live=not no_live, echo=click.echo, notes=notes)


@main.command("settings")
def show_settings() -> None:
    """Print every setting in force and where it came from."""
    from .settings import SETTINGS

    ctx = process.context()
    values = ctx.settings.values.model_dump()
    click.echo(f"{'config folder':28} {str(ctx.settings.config_dir)!s:40} {ctx.settings.config_source}")
    for s in SETTINGS:
        value = values[s.key.replace(".", "_")]
        if ("token" in s.key or "secret" in s.key) and value:
            value = "****"
        elif s.key.endswith(".url") and isinstance(value, str):
            value = redact_url(value)
        click.echo(f"{s.key:28} {value!s:40} ${s.env}")


@main.command()
@click.option("--limit", default=20, show_default=True)
@click.option("--reason", default=None, help="only this reason code")
@click.option("--device", default=None, help="only this device")
def rejections(limit: int, reason: str | None, device: str | None) -> None:
    """List the most recent rejected inputs with their reasons (operators' view)."""
    from .times import format_local

    ctx = process.context()
    store = process.open_store(ctx)
    counters = store.counters()
    click.echo(f"received {counters.received}, accepted {counters.accepted}, rejected "
               + (", ".join(f"{k} {v}" for k, v in sorted(counters.rejected.items())) or "0"))
    for r in store.rejections(limit=limit, reason=reason, device=device):
        click.echo(f"{format_local(r.ts, ctx.settings.tz)}  {r.reason:18} {r.device or '-':18} {r.detail}")
    store.close()


def _accounts() -> Any:
    from .auth import open_accounts

    ctx = process.context()
    return open_accounts(ctx.settings.data_dir, ctx.tree)


@main.group()
def user() -> None:
    """Staff accounts: a role (viewer, editor, admin) and a scope (a region code at any tier)."""


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["viewer", "editor", "admin"]), required=True)
@click.option("--scope", required=True, help="region code the account sees: district, township or village")
@click.option("--password", default=None, help="at least 10 characters (asked for twice, hidden, when not given)")
@click.option("--password-stdin", is_flag=True,
              help="read the password from the first line of stdin (for scripts): it stays out of the process list")
def user_add(username: str, role: str, scope: str, password: str | None, password_stdin: bool) -> None:
    """Create an account (its name must not differ from another's only in case, width or look-alike letters)."""
    from .times import now_ms

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    account = _accounts().add(username, password, role, scope, now_ms())
    click.echo(f"created {account.username}: {account.role} of {account.scope}")


@user.command("list")
def user_list() -> None:
    """Every account with its role, scope and state."""
    for a in _accounts().store.users():
        state = "disabled" if a.disabled else "active"
        click.echo(f"{a.username:24} {a.role:7} {a.scope:13} {state}{'  (demo)' if a.demo else ''}")


@user.command("disable")
@click.argument("username")
def user_disable(username: str) -> None:
    """Disable an account: its sessions end and its API tokens stop working at once."""
    account = _accounts().set_disabled(username, True)
    click.echo(f"disabled {account.username}")


@user.command("enable")
@click.argument("username")
@click.option("--keep-tokens", is_flag=True,
              help="let the API tokens it had before it was disabled work again (default: they are revoked)")
def user_enable(username: str, keep_tokens: bool) -> None:
    """Enable a disabled account: it may log in again; its old sessions stay ended and its API
    tokens are revoked unless --keep-tokens."""
    accounts = _accounts()
    was_disabled = accounts.get(username).disabled
    account = accounts.set_disabled(username, False, keep_tokens=keep_tokens)
    if not was_disabled:
        click.echo(f"{account.username} is active already; nothing changed")
    elif keep_tokens:
        click.echo(f"enabled {account.username}; its API tokens work again")
    else:
        click.echo(f"enabled {account.username}; its API tokens were revoked (create new ones, or use --keep-tokens)")


@user.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True,
              help="read the new password from the first line of stdin (for scripts) instead of asking twice")
def user_passwd(username: str, password_stdin: bool) -> None:
    """Set a new password (10+ characters); the account's sessions end, its API tokens stay."""
    accounts = _accounts()
    accounts.get(username)  # an unknown name fails before anyone types a password
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = str(click.prompt("New password", hide_input=True, confirmation_prompt=True))
    account = accounts.set_password(username, password)
    click.echo(f"changed the password of {account.username}; its sessions have ended")


@main.group()
def token() -> None:
    """API tokens for scripts (Authorization: Bearer ...): shown once, stored hashed, with an expiry."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="script", show_default=True, help="what the token is for")
@click.option("--days", default=90, show_default=True, help="days until it expires (at most 366)")
def token_create(username: str, name: str, days: int) -> None:
    """Create a token acting as USERNAME; the token is printed once, on stdout alone."""
    from .auth import open_accounts
    from .times import format_local, now_ms

    ctx = process.context()
    made = open_accounts(ctx.settings.data_dir, ctx.tree).create_token(username, name, now_ms(), days)
    expires = format_local(made.info.expires_ms, ctx.settings.tz)
    click.echo(f"token {made.info.id} for {username} ({name}), expires {expires}; it is shown only now:", err=True)
    click.echo(made.text)


@token.command("list")
@click.option("--user", "username", default=None)
def token_list(username: str | None) -> None:
    """Tokens (their ids, never the secrets), with expiry and revocation."""
    from .times import now_ms

    now = now_ms()
    for t in _accounts().store.tokens(username):
        state = "revoked" if t.revoked_ms else ("expired" if now >= t.expires_ms else "active")
        click.echo(f"{t.id}  {t.username:24} {t.name:20} {state}")


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id (or its whole text): it stops working at once."""
    from .times import now_ms

    info = _accounts().revoke_token(token_id, now_ms())
    click.echo(f"revoked {info.id} of {info.username}")


@main.command("broker-config")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="folder for `passwd` and `acl`: the broker's auth volume (compose: /mosquitto/auth)")
@click.option("--service-user", default=None,
              help="the account ingest and jobs log in as (default: the user of mqtt.url, else nongyun)")
@click.option("--rotate", multiple=True, metavar="DEVICE", help="issue a new credential for this device")
@click.option("--owner", default=None, metavar="UID:GID",
              help="hand both files (mode 0600) to the broker's user, e.g. 1883:1883 for eclipse-mosquitto")
@click.option("--ingest-user", "ingest_users", multiple=True, metavar="NAME",
              help="a broker user per ingest worker, bound to the client id NAME (default: mqtt.client_id)")
@click.option("--jobs-user", default="nongyun-jobs", show_default=True, help="the jobs runner's broker user")
@click.option("--dynsec-path", default=None,
              help="where the broker reads dynamic-security.json (compose: /mosquitto/auth/dynamic-security.json)")
def broker_config(out_dir: str, service_user: str | None, rotate: tuple[str, ...], owner: str | None,
                  ingest_users: tuple[str, ...], jobs_user: str, dynsec_path: str | None) -> None:
    """Write the broker's files from the registry: one credential per device and per service user.

    passwd, acl, dynamic-security.json (client ids bound to users, devices' SUBSCRIBE refused) and
    mosquitto-nongyun.conf. New credentials are printed once (user, TAB, password) on stdout; they
    are kept only hashed. Restart the broker afterwards so it reads the new files."""
    from pathlib import Path

    from . import broker_config as bc
    from .auth import SqliteAccounts
    from .times import now_ms

    ctx = process.context()
    unknown = [d for d in rotate if ctx.registry.find(d) is None]
    if unknown:
        raise click.ClickException(f"not in the registry: {', '.join(unknown)}")
    user_name = service_user or ctx.settings.mqtt.username or "nongyun"
    group = ctx.settings.values.mqtt_shared_group or "nongyun"
    store = SqliteAccounts.in_dir(ctx.settings.data_dir)
    services = bc.ServiceUsers(ingest_users or (ctx.settings.values.mqtt_client_id,), jobs_user, user_name)
    try:
        files, passwd, acl = bc.write(Path(out_dir), ctx.registry, store, user_name, now_ms(), frozenset(rotate),
                                      group, services, dynsec_path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if owner is not None:
        import os

        uid, _, gid = owner.partition(":")
        if not uid.isdigit() or not (gid or uid).isdigit():
            raise click.ClickException("--owner: numeric UID:GID, e.g. 1883:1883")
        for path in (passwd, acl, Path(out_dir) / bc.DYNSEC_FILE, Path(out_dir) / bc.CONF_FILE):
            os.chown(path, int(uid), int(gid or uid))
    for device, password in files.new_credentials.items():
        click.echo(f"{device}\t{password}")
    click.echo(f"wrote {passwd} ({len(ctx.registry)} devices) and {acl}; {len(files.new_credentials)} new "
               f"credentials (shown above, only now), {len(files.removed)} removed", err=True)


def _echo_progress(label: str) -> Callable[[int, int], None]:
    """A progress callback (done, total) drawing one line, for long work started from the CLI."""

    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        click.echo(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", nl=done >= total)

    return progress


from .cli_registry import devices as _devices  # noqa: E402  (run-time registry changes)
from .cli_registry import plots as _plots  # noqa: E402

main.add_command(_devices)
main.add_command(_plots)

from .cli_data import backup as _backup  # noqa: E402  (backup, restore, migrate: issue 11)
from .cli_data import migrate as _migrate  # noqa: E402
from .cli_data import restore as _restore  # noqa: E402

main.add_command(_backup)
main.add_command(_restore)
main.add_command(_migrate)

from .cli_import import import_group as _import  # noqa: E402  (harvest ledgers: issue 18)

main.add_command(_import)

if __name__ == "__main__":  # pragma: no cover
    main()
