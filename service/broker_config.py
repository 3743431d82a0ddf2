"""``nongyun broker-config``: Mosquitto's password file and ACL, written from the device registry.

Each registered device gets its own credential: generated here, shown once, and kept only as the
Mosquitto hash (PBKDF2-HMAC-SHA512, the ``$7$`` format of ``mosquitto_passwd``) in the account
store, so running the command again rewrites the same files without showing or changing any
password. The ACL names every device: it may publish only under ``nongyun/v1/{its id}/`` and
subscribe to nothing; the service account reads every device topic and publishes alerts.
Entries of the password file that are not devices (the service account written by compose's
``mosquitto-auth`` step) are kept; devices no longer in the registry lose their entry.

``passwd`` + ``acl`` cannot stop a device from taking another client's id, nor refuse its SUBSCRIBE
(Mosquitto 2.0.11 grants ``#`` and ``$share/...`` to an ACL that names no read topic, and then puts
the device in the shared round robin, where its share of the messages is lost). So the same run also
writes ``dynamic-security.json`` for Mosquitto's dynamic-security plugin (shipped with 2.0.0 and
later, tested on 2.0.11): every device is bound to the client id of its own name, its only rights are
to publish its own topics, and the default refuses every SUBSCRIBE; each ingest worker is bound to
the client id of its user name and may subscribe to device topics; the jobs user may publish alerts.
``mosquitto-nongyun.conf`` is the matching conf snippet (plugin, payload limit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from .auth.store import AccountStore
from .registry import Registry

ITERATIONS = 101  # mosquitto_passwd's own default; device passwords are 144 random bits
SALT_BYTES = 12
DEVICE_TOPICS = ("telemetry", "yield", "status")
PASSWD_FILE, ACL_FILE = "passwd", "acl"
DYNSEC_FILE, CONF_FILE = "dynamic-security.json", "mosquitto-nongyun.conf"
MESSAGE_SIZE_LIMIT = 65_536  # the payload limit of DESIGN.md: the broker drops anything larger
DYNSEC_PLUGIN = "/usr/lib/mosquitto_dynamic_security.so"  # its path in the eclipse-mosquitto image


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """``$7$iterations$salt$hash`` exactly as mosquitto_passwd writes it (base64, 64-byte digest)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_hash(stored: str, password: str) -> bool:
    try:
        _, seven, iterations, salt, digest = stored.split("$")
        if seven != "7":
            return False
        again = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations), 64)
    except ValueError:
        return False
    return hmac.compare_digest(again, base64.b64decode(digest))


def parse_passwd(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            user, _, hashed = line.partition(":")
            out[user] = hashed
    return out


@dataclass(frozen=True)
class ServiceUsers:
    """The broker users of our own processes: one per ingest worker (its user name is its client id)
    and one for the jobs runner. ``legacy`` (the user of mqtt.url, e.g. compose's ``nongyun``) keeps
    every right, unbound, for deployments that still share one account."""

    ingest: tuple[str, ...] = ("nongyun-ingest",)
    jobs: str = "nongyun-jobs"
    legacy: str = ""


@dataclass
class BrokerFiles:
    passwd: str
    acl: str
    new_credentials: dict[str, str] = field(default_factory=dict)  # device or service user → password, shown once
    removed: list[str] = field(default_factory=list)
    dynsec: str = ""


def build(registry: Registry, store: AccountStore, existing_passwd: str, service_user: str, now: int,
          rotate: frozenset[str] = frozenset(), shared_group: str = "nongyun",
          services: ServiceUsers | None = None) -> BrokerFiles:
    """The files' contents; issues credentials to devices that have none (or are in ``rotate``), and
    to the service users of ``services`` that have no entry in the password file yet."""
    devices = sorted(d.id for d in registry)
    known = store.device_credentials()
    out = BrokerFiles("", "")
    for gone in sorted(set(known) - set(devices)):
        store.remove_device_credential(gone)
        out.removed.append(gone)
    for device in devices:
        if device not in known or device in rotate:
            password = secrets.token_urlsafe(18)
            known[device] = mosquitto_hash(password)
            store.set_device_credential(device, known[device], now)
            out.new_credentials[device] = password
    ours = set(devices) | set(out.removed)
    kept = {u: h for u, h in parse_passwd(existing_passwd).items() if u not in ours}
    services = services or ServiceUsers(ingest=(), jobs="", legacy=service_user)  # the one-account setup
    for name in filter(None, (*services.ingest, services.jobs)):
        if name in ours:
            raise ValueError(f"service user {name!r} is also a device id")
        if name not in kept or name in rotate:
            password = secrets.token_urlsafe(18)
            kept[name] = mosquitto_hash(password)
            out.new_credentials[name] = password
    lines = [f"{u}:{h}" for u, h in sorted(kept.items())] + [f"{d}:{known[d]}" for d in devices]
    out.passwd = "\n".join(lines) + "\n"
    out.acl = acl_text(devices, service_user, shared_group)
    out.dynsec = dynsec_text({d: known[d] for d in devices}, kept, services, shared_group)
    return out


def _dynsec_client(user: str, hashed: str, roles: list[str], clientid: str | None) -> dict[str, object]:
    """A dynamic-security client from a ``$7$`` hash: the plugin stores the same PBKDF2-SHA512 fields."""
    _, _, iterations, salt, digest = hashed.split("$")
    client: dict[str, object] = {"username": user, "password": digest, "salt": salt, "iterations": int(iterations),
                                 "roles": [{"rolename": r} for r in roles]}
    if clientid is not None:
        client["clientid"] = clientid  # the plugin refuses this user under any other client id
    return client


def dynsec_text(devices: dict[str, str], others: dict[str, str], services: ServiceUsers,
                shared_group: str = "nongyun") -> str:
    """``dynamic-security.json``: devices and ingest workers bound to their client ids, SUBSCRIBE
    refused unless a role allows it (only ingest's does). ``others`` are the non-device passwd entries."""
    read = [{"acltype": "subscribePattern", "topic": t, "priority": 0, "allow": True}
            for t in ("nongyun/v1/#", f"$share/{shared_group}/nongyun/v1/#")]
    alerts = [{"acltype": "publishClientSend", "topic": "nongyun/v1/alerts/#", "priority": 0, "allow": True}]
    roles: list[dict[str, object]] = [{"rolename": "nongyun-ingest", "acls": read},
                                      {"rolename": "nongyun-jobs", "acls": alerts}]
    clients = []
    for user, hashed in sorted(others.items()):
        if user in services.ingest:
            clients.append(_dynsec_client(user, hashed, ["nongyun-ingest"], user))
        elif user and user == services.jobs:
            clients.append(_dynsec_client(user, hashed, ["nongyun-jobs"], None))  # jobs picks its own id
        elif user == services.legacy:
            clients.append(_dynsec_client(user, hashed, ["nongyun-ingest", "nongyun-jobs"], None))
    for device, hashed in sorted(devices.items()):
        role = f"device-{device}"
        roles.append({"rolename": role, "acls": [
            {"acltype": "publishClientSend", "topic": f"nongyun/v1/{device}/{kind}", "priority": 0, "allow": True}
            for kind in DEVICE_TOPICS]})
        clients.append(_dynsec_client(device, hashed, [role], device))
    doc = {"defaultACLAccess": {"publishClientSend": False, "publishClientReceive": True,
                                "subscribe": False, "unsubscribe": True},
           "clients": clients, "groups": [], "roles": roles}
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def conf_snippet(dynsec_path: str, plugin: str = DYNSEC_PLUGIN) -> str:
    """The lines a broker's mosquitto.conf includes to use the written files."""
    return "\n".join([
        "# Written by `nongyun broker-config`. Client ids bound to users, SUBSCRIBE refused to devices:",
        "# Mosquitto >= 2.0's dynamic-security plugin (replaces password_file and acl_file).",
        f"plugin {plugin}",
        f"plugin_opt_config_file {dynsec_path}",
        f"message_size_limit {MESSAGE_SIZE_LIMIT}",
    ]) + "\n"


def acl_text(devices: list[str], service_user: str, shared_group: str = "nongyun") -> str:
    parts = [
        "# Written by `nongyun broker-config` from the device registry: run it again rather than edit.",
        "# A device may publish only under nongyun/v1/{its id}/ and subscribes to nothing.",
        f"user {service_user}",
        "topic read nongyun/v1/#",
        f"topic read $share/{shared_group}/nongyun/v1/#",
        "topic write nongyun/v1/alerts/#",
    ]
    for d in devices:
        parts.append("")
        parts.append(f"user {d}")
        parts.extend(f"topic write nongyun/v1/{d}/{kind}" for kind in DEVICE_TOPICS)
    return "\n".join(parts) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)  # Mosquitto, reloading on SIGHUP, never reads half a file


def write(out_dir: Path, registry: Registry, store: AccountStore, service_user: str, now: int,
          rotate: frozenset[str] = frozenset(), shared_group: str = "nongyun",
          services: ServiceUsers | None = None, dynsec_path: str | None = None) -> tuple[BrokerFiles, Path, Path]:
    """Writes passwd, acl, dynamic-security.json and the conf snippet (``dynsec_path``: where the
    broker sees the JSON file, default its path here)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    passwd_path, acl_path = out_dir / PASSWD_FILE, out_dir / ACL_FILE
    existing = passwd_path.read_text(encoding="utf-8") if passwd_path.exists() else ""
    files = build(registry, store, existing, service_user, now, rotate, shared_group, services)
    _write_atomic(passwd_path, files.passwd)
    _write_atomic(acl_path, files.acl)
    _write_atomic(out_dir / DYNSEC_FILE, files.dynsec)
    _write_atomic(out_dir / CONF_FILE, conf_snippet(dynsec_path or str(out_dir / DYNSEC_FILE)))
    return files, passwd_path, acl_path


def issue_device_credential(out_dir: Path, registry: Registry, store: AccountStore, device: str, now: int,
                            service_user: str = "nongyun", shared_group: str = "nongyun",
                            services: ServiceUsers | None = None) -> str:
    """Issue (or rotate) one device's credential and rewrite every file; returns its password, shown
    once. For a device added at run time: restart the broker afterwards (the plugin reads its file at
    start)."""
    if registry.find(device) is None:
        raise KeyError(f"{device!r} is not in the registry")
    files, _, _ = write(out_dir, registry, store, service_user, now, frozenset({device}), shared_group, services)
    return files.new_credentials[device]
