"""``nongyun broker-config``: Mosquitto's password file and ACL, written from the device registry.

Each registered device gets its own credential: generated here, shown once, and kept only as the
Mosquitto hash (PBKDF2-HMAC-SHA512, the ``$7$`` format of ``mosquitto_passwd``) in the account
store, so running the command again rewrites the same files without showing or changing any
password. The ACL names every device: it may publish only under ``nongyun/v1/{its id}/`` and
subscribe to nothing; the service account reads every device topic and publishes alerts.
Entries of the password file that are not devices (the service account written by compose's
``mosquitto-auth`` step) are kept; devices no longer in the registry lose their entry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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


@dataclass
class BrokerFiles:
    passwd: str
    acl: str
    new_credentials: dict[str, str] = field(default_factory=dict)  # device → password, shown once
    removed: list[str] = field(default_factory=list)


def build(registry: Registry, store: AccountStore, existing_passwd: str, service_user: str, now: int,
          rotate: frozenset[str] = frozenset(), shared_group: str = "nongyun") -> BrokerFiles:
    """The files' contents; issues credentials to devices that have none (or are in ``rotate``)."""
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
    lines = [f"{u}:{h}" for u, h in sorted(kept.items())] + [f"{d}:{known[d]}" for d in devices]
    out.passwd = "\n".join(lines) + "\n"
    out.acl = acl_text(devices, service_user, shared_group)
    return out


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
          rotate: frozenset[str] = frozenset(), shared_group: str = "nongyun") -> tuple[BrokerFiles, Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    passwd_path, acl_path = out_dir / PASSWD_FILE, out_dir / ACL_FILE
    existing = passwd_path.read_text(encoding="utf-8") if passwd_path.exists() else ""
    files = build(registry, store, existing, service_user, now, rotate, shared_group)
    _write_atomic(passwd_path, files.passwd)
    _write_atomic(acl_path, files.acl)
    return files, passwd_path, acl_path
