"""config/alerts.toml: job intervals, station-health limits, agronomic rules, webhooks and group robots.

Validated once when the runner starts (pydantic), so a rule with its thresholds the wrong way round
or an unknown metric or crop stops ``nongyun jobs`` with a message naming it, not at 3 a.m.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from ..catalogue import Catalogue
from ..errors import SettingsError

Op = Literal["below", "at_or_below", "above", "at_or_above"]
ChannelType = Literal["wecom", "dingtalk", "webhook"]
Event = Literal["raised", "acknowledged", "cleared"]
STATION_KINDS = ("device_offline", "battery_low")  # raised by jobs/health.py, not by [[rules]]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class JobsConfig(_Model):
    rollups_every_s: int = Field(default=180, ge=10)
    health_every_s: int = Field(default=60, ge=10)
    alerts_every_s: int = Field(default=300, ge=10)
    stale_after_h: int = Field(default=3, ge=1)
    max_gap_h: int = Field(default=3, ge=0)


class StationHealth(_Model):
    offline_after_intervals: float = Field(default=3, gt=0)
    battery_low_v: float = 3.4
    battery_clear_v: float = 3.5

    @model_validator(mode="after")
    def _hysteresis(self) -> StationHealth:
        if self.battery_clear_v < self.battery_low_v:
            raise ValueError("battery_clear_v must be at or above battery_low_v")
        return self


class Rule(_Model):
    id: str = Field(pattern=r"^[a-z0-9_-]{1,40}$")
    kind: str
    metric: str
    agg: Literal["mean", "min", "max", "sum"] = "mean"
    per: Literal["village", "station"] = "village"
    window_h: int = Field(default=1, ge=1, le=24 * 14)
    op: Op
    raise_at: float = Field(alias="raise")
    clear_at: float = Field(alias="clear")
    raise_for_h: int = Field(default=0, ge=0)
    clear_for_h: int = Field(default=1, ge=0)
    severity: Literal["info", "warning", "critical"] = "warning"
    season: Literal["growing", "all"] | tuple[str, str] = "growing"
    crops: tuple[str, ...] | None = None
    message: str

    @model_validator(mode="after")
    def _hysteresis(self) -> Rule:
        """The clear threshold must lie on the recovered side, or a value between them would flap."""
        if self.op in ("below", "at_or_below") and not self.clear_at > self.raise_at:
            raise ValueError(f"op {self.op} needs clear ({self.clear_at}) above raise ({self.raise_at})")
        if self.op in ("above", "at_or_above") and not self.clear_at < self.raise_at:
            raise ValueError(f"op {self.op} needs clear ({self.clear_at}) below raise ({self.raise_at})")
        if isinstance(self.season, tuple):
            for md in self.season:
                _month_day(md)
        try:
            self.message.format(region="村", value=1.0, threshold=1.0, hours=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"message: {exc!r} (placeholders: region, value, threshold, hours)") from None
        return self

    def bad(self, v: float) -> bool:
        return {"below": v < self.raise_at, "at_or_below": v <= self.raise_at,
                "above": v > self.raise_at, "at_or_above": v >= self.raise_at}[self.op]

    def recovered(self, v: float) -> bool:
        return v >= self.clear_at if self.op in ("below", "at_or_below") else v <= self.clear_at

    @property
    def lookback_h(self) -> int:
        return max(self.raise_for_h, self.clear_for_h) + self.window_h + 2


class Webhook(_Model):
    url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(default=3.0, gt=0, le=30)


class Channel(_Model):
    """One group robot (or webhook) that hears about alerts under ``region``.

    The URL carries the robot's credential (WeCom ``key``, DingTalk ``access_token``) and ``secret``
    signs DingTalk URLs, so both are SecretStr (a repr or a log shows ``**********``) and may come
    from the environment (``url_env``, ``secret_env``) instead of this file."""

    type: ChannelType
    region: str = Field(pattern=r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$")
    name: str = Field(default="", pattern=r"^[A-Za-z0-9_.:-]{0,64}$")
    kinds: tuple[str, ...] | None = None  # None: every alert kind
    events: tuple[Event, ...] = ("raised", "cleared")
    url: SecretStr | None = None
    url_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    secret: SecretStr | None = None
    secret_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    at_mobiles: tuple[str, ...] = ()  # DingTalk: members to @ (their phone numbers)
    at_all: bool = False  # DingTalk: @ everyone
    weekly_brief: bool = False  # push the region's weekly 墒情简报 link here
    timeout_s: float = Field(default=5.0, gt=0, le=30)

    @model_validator(mode="after")
    def _one_source(self) -> Channel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env")
        if self.type != "dingtalk" and (self.secret is not None or self.secret_env is not None):
            raise ValueError("secret / secret_env sign DingTalk URLs only")
        if self.secret is not None and self.secret_env is not None:
            raise ValueError("give at most one of secret and secret_env")
        if not self.name:
            object.__setattr__(self, "name", f"{self.type}-{self.region}")
        return self

    def wants(self, village: str, kind: str, event: str) -> bool:
        return village.startswith(self.region) and (self.kinds is None or kind in self.kinds) and event in self.events

    def resolve(self, env: Mapping[str, str] | None = None) -> tuple[str, str | None]:
        """(URL, signing secret): read once when the jobs runner starts, never printed."""
        env = os.environ if env is None else env
        url = self.url.get_secret_value() if self.url is not None else env.get(self.url_env or "", "")
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"alerts.toml: channel {self.name}: "
                                + (f"${self.url_env} is not set to an http(s) URL" if self.url_env
                                   else "url must start with http:// or https://"))
        secret = self.secret.get_secret_value() if self.secret is not None else None
        if self.secret_env is not None:
            secret = env.get(self.secret_env) or None
            if secret is None:
                raise SettingsError(f"alerts.toml: channel {self.name}: ${self.secret_env} is not set")
        return url, secret


class NotifyConfig(_Model):
    """Retries of the robots' outbox and the weekly brief's hour. Back-off doubles from ``backoff_s``
    up to ``backoff_max_s``: the defaults wait 5+10+20+40 s, enough for WeCom's 20-a-minute limit."""

    attempts: int = Field(default=5, ge=1, le=20)
    backoff_s: float = Field(default=5.0, gt=0, le=600)
    backoff_max_s: float = Field(default=300.0, gt=0, le=3600)
    queue_max: int = Field(default=10_000, ge=10, le=1_000_000)
    brief_weekday: int = Field(default=1, ge=1, le=7)  # ISO: 1 = Monday
    brief_hour: int = Field(default=8, ge=0, le=23)  # local time


class AlertsConfig(_Model):
    jobs: JobsConfig = JobsConfig()
    station_health: StationHealth = StationHealth()
    crops: dict[str, str] = Field(default_factory=lambda: {"default": "corn"})
    rules: tuple[Rule, ...] = ()
    webhooks: dict[str, Webhook] = Field(default_factory=dict)
    notify: NotifyConfig = NotifyConfig()
    channels: tuple[Channel, ...] = ()

    def channels_for(self, village: str, kind: str, event: str) -> list[Channel]:
        return [c for c in self.channels if c.wants(village, kind, event)]

    def crop_of(self, village: str) -> str:
        """The crop of the longest region-code prefix listed in [crops], else the default."""
        best = ""
        for code in self.crops:
            if code != "default" and village.startswith(code) and len(code) > len(best):
                best = code
        return self.crops[best] if best else self.crops.get("default", "corn")

    def hooks_for(self, village: str) -> list[tuple[str, Webhook]]:
        return [(code, hook) for code, hook in sorted(self.webhooks.items()) if village.startswith(code)]

    @classmethod
    def load(cls, path: Path, catalogue: Catalogue) -> AlertsConfig:
        if not path.exists():
            return cls()
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
            found = cls.model_validate(doc)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: cannot read alert rules: {exc}") from None
        except ValidationError as exc:
            lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            raise SettingsError(f"{path}: invalid alert rules:\n" + "\n".join(lines)) from None
        found.check(path, catalogue)
        return found

    def check(self, path: Path, catalogue: Catalogue) -> None:
        seen: set[str] = set()
        for r in self.rules:
            if r.id in seen:
                raise SettingsError(f"{path}: duplicate rule id {r.id!r}")
            seen.add(r.id)
            if r.metric not in catalogue.metrics:
                raise SettingsError(f"{path}: rule {r.id}: metric {r.metric!r} is not in the catalogue")
            unknown = set(r.crops or ()) - set(catalogue.crops)
            if unknown:
                raise SettingsError(f"{path}: rule {r.id}: crops not in the catalogue: {sorted(unknown)}")
        unknown = set(self.crops.values()) - set(catalogue.crops)
        if unknown:
            raise SettingsError(f"{path}: [crops] names crops not in the catalogue: {sorted(unknown)}")
        self._check_channels(path)

    def _check_channels(self, path: Path) -> None:
        kinds = {r.kind for r in self.rules} | set(STATION_KINDS)
        names: set[str] = set()
        for c in self.channels:
            if c.name in names:
                raise SettingsError(f"{path}: two channels named {c.name!r} (give each a `name`)")
            names.add(c.name)
            unknown = set(c.kinds or ()) - kinds
            if unknown:
                raise SettingsError(f"{path}: channel {c.name}: unknown alert kinds {sorted(unknown)} "
                                    f"(known: {', '.join(sorted(kinds))})")


def _month_day(text: str) -> tuple[int, int]:
    try:
        month, day = (int(x) for x in text.split("-"))
        date(2024, month, day)  # a leap year, so 02-29 is allowed
    except ValueError:
        raise ValueError(f"{text!r} is not MM-DD") from None
    return month, day


def in_season(rule: Rule, crop_window: tuple[str, str], today: date) -> bool:
    """Whether ``today`` (local) lies in the rule's season for a crop sown/harvested in ``crop_window``."""
    if rule.season == "all":
        return True
    first, last = crop_window if rule.season == "growing" else rule.season
    lo, hi, md = _month_day(first), _month_day(last), (today.month, today.day)
    return lo <= md <= hi if lo <= hi else (md >= lo or md <= hi)  # a season may span the new year
