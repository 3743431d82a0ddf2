"""Every setting in one declarative table: name, environment variable, default and help.

Settings come from ``config/nongyun.toml`` and are overridden by environment variables (DESIGN.md);
they are validated once, at start-up, and every problem is reported with where the value came from.
``tests/test_docs.py`` fails when a setting here is not documented in the README and in the TOML file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .config_files import locate
from .errors import SettingsError


@dataclass(frozen=True)
class Setting:
    key: str  # dotted key in nongyun.toml: section.name
    env: str | None  # environment variable that overrides the file
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("store.backend", "NONGYUN_STORE", "sqlite", "store backend: `sqlite` (embedded) or `influxdb`"),
    Setting("store.data_dir", "NONGYUN_DATA_DIR", "./data", "folder of the embedded store and local state"),
    Setting("influxdb.url", "INFLUXDB_V2_URL", "", "InfluxDB 2 URL, e.g. http://influxdb:8086"),
    Setting("influxdb.token", "INFLUXDB_V2_TOKEN", "", "InfluxDB 2 API token"),
    Setting("influxdb.org", "INFLUXDB_V2_ORG", "", "InfluxDB 2 organization"),
    Setting("influxdb.bucket", "NONGYUN_INFLUXDB_BUCKET", "nongyun", "bucket for raw points"),
    Setting("influxdb.batch_size", "NONGYUN_INFLUXDB_BATCH_SIZE", 5000, "points per write request"),
    Setting("influxdb.flush_interval_ms", "NONGYUN_INFLUXDB_FLUSH_MS", 1000, "write flush interval"),
    Setting("mqtt.url", "NONGYUN_MQTT_URL", "mqtt://127.0.0.1:1883", "broker, mqtt://user:pass@host:port"),
    Setting("mqtt.ca_file", "NONGYUN_MQTT_CA_FILE", "",
            "CA certificate (PEM) that signs the broker's certificate, for mqtts:// (empty: the system's CAs)"),
    Setting("mqtt.cert_file", "NONGYUN_MQTT_CERT_FILE", "",
            "client certificate (PEM) for mqtts://, when the broker asks"),
    Setting("mqtt.key_file", "NONGYUN_MQTT_KEY_FILE", "", "private key (PEM) of mqtt.cert_file"),
    Setting("mqtt.client_id", "NONGYUN_MQTT_CLIENT_ID", "nongyun-ingest",
            "fixed client id of the ingest worker: its persistent session keeps the backlog"),
    Setting("mqtt.shared_group", "NONGYUN_MQTT_SHARED_GROUP", "",
            "shared-subscription group (e.g. `nongyun`) so several ingest workers split the load"),
    Setting("ingest.batch_size", "NONGYUN_INGEST_BATCH_SIZE", 2000, "records per store commit"),
    Setting("ingest.flush_ms", "NONGYUN_INGEST_FLUSH_MS", 200, "longest wait before a partial batch is committed"),
    Setting("ingest.queue_max", "NONGYUN_INGEST_QUEUE_MAX", 20000,
            "messages held in memory before ingest stops reading from the broker (back-pressure)"),
    Setting("web.http", "NONGYUN_HTTP", "127.0.0.1:8080", "web listen address host:port"),
    Setting("web.auth", "NONGYUN_WEB_AUTH", "required",
            "`required`: staff log in and see only their scope; `off`: everything open (a closed network only)"),
    Setting("web.secret_key", "NONGYUN_SECRET_KEY", "",
            "key that signs session cookies; empty: generated once into `{data_dir}/secret_key`"),
    Setting("web.cookie_secure", "NONGYUN_COOKIE_SECURE", True,
            "send the session cookie over HTTPS only (browsers allow it on http://127.0.0.1 too)"),
    Setting("web.proxy_hops", "NONGYUN_PROXY_HOPS", 0,
            "reverse proxies in front of the web app; > 0 trusts that many X-Forwarded-For/-Proto entries"),
    Setting("web.allowed_hosts", "NONGYUN_ALLOWED_HOSTS", "",
            "host names the web app answers to, comma-separated (`.example.org`: it and its subdomains; `*`: any); "
            "loopback, IP addresses and the host of web.http are always allowed"),
    Setting("web.public_url", "NONGYUN_PUBLIC_URL", "",
            "address staff open the dashboards at, e.g. https://nongyun.example.org: links in 企业微信/钉钉 messages "
            "(empty: messages without links, no weekly brief push)"),
    Setting("web.password_checks", "NONGYUN_PASSWORD_CHECKS", 2,
            "password checks (Argon2, 64 MiB each) one web process runs at once; a few more wait, the rest get 503"),
    Setting("retention.raw_days", "NONGYUN_RETENTION_RAW_DAYS", 400,
            "days raw readings and yields are kept (0: forever); 400 covers a season and its 同比 a year on"),
    Setting("retention.rollup_days", "NONGYUN_RETENTION_ROLLUP_DAYS", 0,
            "days hourly/daily rollups are kept (0: forever; they are small and hold the history)"),
    Setting("retention.rejection_days", "NONGYUN_RETENTION_REJECTION_DAYS", 30,
            "days rejection samples are kept (0: forever; their counts are kept by retention.counter_days)"),
    Setting("retention.counter_days", "NONGYUN_RETENTION_COUNTER_DAYS", 0,
            "days the counters of a silent ingest worker or (device, reason) are kept after their last change "
            "(0: forever)"),
    Setting("time.tz", "NONGYUN_TZ", "Asia/Shanghai", "time zone of calendar days and years"),
    Setting("log.level", "NONGYUN_LOG_LEVEL", "INFO", "log level: DEBUG, INFO, WARNING or ERROR"),
)


class _Validated(BaseModel):
    """The typed, validated form of SETTINGS; field names are the dotted keys with '_' for '.'."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store_backend: Literal["sqlite", "influxdb"]
    store_data_dir: Path
    influxdb_url: str
    influxdb_token: str
    influxdb_org: str
    influxdb_bucket: str = Field(min_length=1)
    influxdb_batch_size: int = Field(ge=1, le=100_000)
    influxdb_flush_interval_ms: int = Field(ge=1, le=600_000)
    mqtt_url: str
    mqtt_ca_file: str
    mqtt_cert_file: str
    mqtt_key_file: str
    mqtt_client_id: str = Field(min_length=1, max_length=64)
    mqtt_shared_group: str = Field(pattern=r"^[A-Za-z0-9_-]*$")
    ingest_batch_size: int = Field(ge=1, le=100_000)
    ingest_flush_ms: int = Field(ge=1, le=60_000)
    ingest_queue_max: int = Field(ge=10, le=10_000_000)
    web_http: str
    web_auth: Literal["required", "off"]
    web_secret_key: str
    web_cookie_secure: bool
    web_proxy_hops: int = Field(ge=0, le=10)
    web_allowed_hosts: str
    web_public_url: str
    web_password_checks: int = Field(ge=1, le=64)
    retention_raw_days: int = Field(ge=0, le=36_500)
    retention_rollup_days: int = Field(ge=0, le=36_500)
    retention_rejection_days: int = Field(ge=0, le=36_500)
    retention_counter_days: int = Field(ge=0, le=36_500)
    time_tz: str
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl") or not parts.hostname:
            raise ValueError("must look like mqtt://[user:pass@]host[:port] or mqtts://...")
        _ = parts.port  # raises ValueError on a bad port
        return v

    @field_validator("web_http")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:8080")
        return v

    @field_validator("web_secret_key")
    @classmethod
    def _secret_key(cls, v: str) -> str:
        # Whoever guesses the key signs cookies of his own: a short one is found offline from any
        # cookie the app ever set. Empty is fine: a 64-character key is then generated.
        if v and (len(v) < 32 or len(set(v)) < 8):
            raise ValueError("must be empty (generated) or at least 32 varied characters, e.g. "
                             "python -c 'import secrets; print(secrets.token_urlsafe(48))'")
        return v

    @field_validator("web_allowed_hosts")
    @classmethod
    def _allowed_hosts(cls, v: str) -> str:
        for name in (n.strip() for n in v.split(",")):
            if name and name != "*" and not re.fullmatch(r"\.?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?", name):
                raise ValueError(f"{name!r}: comma-separated host names without scheme or port, "
                                 "e.g. nongyun.example.org,.county.example")
        return v

    @field_validator("web_public_url")
    @classmethod
    def _public_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if v and (parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.password):
            raise ValueError("must be empty or http(s)://host[:port][/path], e.g. https://nongyun.example.org")
        return v.rstrip("/")

    @field_validator("time_tz")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Asia/Shanghai)") from exc
        return v


@dataclass(frozen=True)
class Settings:
    """What every process is built from; ``config_dir`` locates regions, devices and catalogue."""

    config_dir: Path
    values: _Validated
    config_source: str = "argument"  # "$NONGYUN_CONFIG", "./config" or "packaged default" (config_files.py)

    # Convenience accessors: the names the rest of the code reads.
    @property
    def store(self) -> str:
        return self.values.store_backend

    @property
    def data_dir(self) -> Path:
        return self.values.store_data_dir

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.values.time_tz)

    @property
    def mqtt(self) -> MqttAddress:
        v = self.values
        return MqttAddress.parse(v.mqtt_url, v.mqtt_ca_file, v.mqtt_cert_file, v.mqtt_key_file)

    @property
    def http(self) -> tuple[str, int]:
        host, _, port = self.values.web_http.rpartition(":")
        return host.strip("[]"), int(port)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some values replaced (dotted keys with '_' for '.'); validated again."""
        merged = self.values.model_dump() | overrides
        return Settings(self.config_dir, _validate(merged, {k: "override" for k in overrides}), self.config_source)


@dataclass(frozen=True)
class MqttAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool = False  # mqtts:// (or ssl://): TLS, port 8883 unless given
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @classmethod
    def parse(cls, url: str, ca_file: str = "", cert_file: str = "", key_file: str = "") -> MqttAddress:
        parts = urlsplit(url)
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), parts.username,
                   parts.password, tls, ca_file, cert_file, key_file)

    def configure(self, client: Any) -> None:
        """Credentials and, for mqtts://, TLS (verified against ca_file) on a paho client."""
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set(ca_certs=self.ca_file or None, certfile=self.cert_file or None,
                           keyfile=self.key_file or None)


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``****``: the one way every process prints a URL."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "****"  # unparseable: it may hold anything
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:****@{host}{port}", parts.path, parts.query, parts.fragment))


def _field(key: str) -> str:
    return key.replace(".", "_")


def _validate(raw: Mapping[str, Any], sources: Mapping[str, str]) -> _Validated:
    try:
        return _Validated.model_validate(dict(raw))
    except ValidationError as exc:
        by_field = {_field(s.key): s for s in SETTINGS}
        lines = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            setting = by_field.get(name)
            where = sources.get(name, "default")
            label = f"{setting.key} ({setting.env})" if setting and setting.env else name
            secret = setting is not None and ("secret" in setting.key or "token" in setting.key)
            shown = "****" if secret else repr(err.get("input"))
            if setting is not None and setting.key.endswith("url") and isinstance(err.get("input"), str):
                shown = repr(redact_url(err["input"]))  # a rejected key may still be nearly the real one
            lines.append(f"  {label} = {shown} from {where}: {err['msg']}")
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from None


def load(
    config_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults ← ``config_dir/nongyun.toml`` ← environment ← ``overrides`` (dotted keys)."""
    env = os.environ if env is None else env
    folder = locate(config_dir, env)
    cfg = folder.path
    raw: dict[str, Any] = {_field(s.key): s.default for s in SETTINGS}
    sources: dict[str, str] = {}
    known = {s.key for s in SETTINGS}
    toml_path = cfg / "nongyun.toml"
    if toml_path.exists():
        try:
            doc = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{toml_path}: not valid TOML: {exc}") from None
        for section, table in doc.items():
            if not isinstance(table, dict):
                raise SettingsError(f"{toml_path}: top-level key {section!r} must be a [section]")
            for name, value in table.items():
                key = f"{section}.{name}"
                if key not in known:
                    raise SettingsError(f"{toml_path}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
                raw[_field(key)] = value
                sources[_field(key)] = str(toml_path)
    for s in SETTINGS:
        if s.env and s.env in env:
            raw[_field(s.key)] = env[s.env]
            sources[_field(s.key)] = f"${s.env}"
    for key, value in (overrides or {}).items():
        if key not in known:
            raise SettingsError(f"unknown setting {key!r}")
        raw[_field(key)] = value
        sources[_field(key)] = "override"
    values = _validate(raw, sources)
    if values.store_backend == "influxdb":
        missing = [s.env for s in SETTINGS if s.key in ("influxdb.url", "influxdb.org") and not raw[_field(s.key)]]
        if missing:
            raise SettingsError(f"invalid settings:\n  store.backend = 'influxdb' needs {', '.join(map(str, missing))}")
    return Settings(cfg, values, folder.source)
