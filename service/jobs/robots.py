"""企业微信 and 钉钉 group robots: the markdown bodies staff read, DingTalk's URL signature, one POST.

Township staff read alerts in a group chat, not in JSON: a message says in Chinese what happened
(旱情, 霜冻 ...), where (乡镇 + 村), since when, the value against its threshold, and links to the
region's page when ``web.public_url`` is set. Both robots answer HTTP 200 with ``{"errcode": 0}``
on success; ``Answer`` sorts every other outcome into "worth retrying" (rate limits, 5xx, time-outs)
and "never going to work" (a wrong key, a bad signature), so the outbox neither hammers a dead robot
nor drops a message that would have gone through a minute later.

Nothing here logs or returns a URL: the URL is the credential (WeCom ``key``, DingTalk ``access_token``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import orjson

from ..store.base import Alert

KIND_NAMES = {"drought": "旱情", "frost": "霜冻", "waterlogging": "渍涝", "heat": "高温热害",
              "device_offline": "站点离线", "battery_low": "电池电压低"}
EVENT_NAMES = {"raised": "预警", "acknowledged": "已确认", "cleared": "解除"}
SEVERITY_NAMES = {"info": "提示", "warning": "警告", "critical": "严重"}
# Robot answers that no retry can fix (a deleted robot, a wrong key or token, a bad signature): dead
# at once. Everything else non-zero (45009 WeCom / 130101 DingTalk rate limits, -1 busy ...) is retried.
PERMANENT_ERRCODES = frozenset({93000, 93004, 300001, 310000, 400101, 400102})
USER_AGENT = "nongyun-alerts/1"


@dataclass(frozen=True)
class Message:
    """What one robot message says, before it is shaped for WeCom or DingTalk."""

    title: str  # DingTalk's notification preview; the first heading in both
    lines: tuple[str, ...]  # markdown, one element per line
    link: tuple[str, str] | None = None  # (label, absolute URL)

    def markdown(self, *, wecom: bool) -> str:
        head = f"### {self.title}"
        body = [head, *self.lines]
        if self.link is not None:
            body.append(f"[{self.link[0]}]({self.link[1]})")
        text = "\n".join(body)
        return text if wecom else text.replace("\n", "\n\n")  # DingTalk needs blank lines between lines


def wecom_body(msg: Message) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": msg.markdown(wecom=True)}}


def dingtalk_body(msg: Message, at_mobiles: tuple[str, ...] = (), at_all: bool = False) -> dict[str, Any]:
    text = msg.markdown(wecom=False)
    if at_mobiles:  # DingTalk only notifies members whose @ appears in the text too
        text += "\n\n" + " ".join(f"@{m}" for m in at_mobiles)
    body: dict[str, Any] = {"msgtype": "markdown", "markdown": {"title": msg.title, "text": text}}
    if at_mobiles or at_all:
        body["at"] = {"atMobiles": list(at_mobiles), "isAtAll": at_all}
    return body


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")), URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def signed_url(url: str, secret: str | None, timestamp_ms: int) -> str:
    """The webhook URL with ``timestamp`` and ``sign`` appended; signed afresh for every attempt,
    since DingTalk refuses a timestamp more than an hour old."""
    if not secret:
        return url
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


@dataclass(frozen=True)
class Answer:
    ok: bool
    retry: bool  # worth another attempt later
    error: str = ""  # short, for logs and health; never the URL


def interpret(status: int, body: bytes, *, errcode: bool) -> Answer:
    """A robot's (``errcode``) or a plain webhook's HTTP answer as delivered / retry / give up."""
    if status >= 500 or status == 429:
        return Answer(False, True, f"HTTP {status}")
    if not 200 <= status < 300:
        return Answer(False, False, f"HTTP {status}")
    if not errcode:
        return Answer(True, False)
    try:
        doc = orjson.loads(body)
        code = int(doc.get("errcode", -1)) if isinstance(doc, dict) else -1
        text = str(doc.get("errmsg", ""))[:120] if isinstance(doc, dict) else ""
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return Answer(False, True, "answer is not JSON")
    if code == 0:
        return Answer(True, False)
    return Answer(False, code not in PERMANENT_ERRCODES, f"errcode {code}: {text}".rstrip(": "))


def post(url: str, body: bytes, timeout_s: float, *, errcode: bool) -> Answer:
    """One POST; every failure becomes an ``Answer``, never an exception (the worker thread lives on)."""
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return interpret(resp.status, resp.read(64 * 1024), errcode=errcode)
    except urllib.error.HTTPError as exc:
        return interpret(exc.code, b"", errcode=errcode)
    except TimeoutError:
        return Answer(False, True, f"no answer in {timeout_s:g} s")
    except urllib.error.URLError as exc:  # its reason may be a string quoting the URL: keep only an OSError's
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return Answer(False, True, f"no answer in {timeout_s:g} s")
        return Answer(False, True, f"unreachable: {reason.strerror or type(reason).__name__}"
                      if isinstance(reason, OSError) else "unreachable")
    except OSError as exc:
        return Answer(False, True, f"connection failed: {exc.strerror or type(exc).__name__}")
    except ValueError:  # http.client.InvalidURL and friends quote the URL
        return Answer(False, False, "invalid URL")


# -- what the messages say ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    township: str
    village: str


def alert_message(a: Alert, event: str, place: Place, unit: str | None, when: Callable[[int], str],
                  link: str | None) -> Message:
    """The Chinese text of one alert change: kind and event, where, since when, value vs threshold."""
    kind = KIND_NAMES.get(a.kind, a.kind)
    title = f"【{kind}{EVENT_NAMES.get(event, event)}】{place.township} {place.village}"
    lines = [f"> 地点：{place.township} {place.village}" + (f"（{a.device}）" if a.device else ""),
             f"> 级别：{SEVERITY_NAMES.get(a.severity, a.severity)}",
             f"> 开始：{when(a.raised_at)}"]
    if event == "cleared" and a.cleared_at is not None:
        lines.append(f"> 解除：{when(a.cleared_at)}")
    if a.value is not None:
        shown = f"{a.value:.1f}" + (f" {unit}" if unit else "")
        if a.threshold is not None:
            shown += f"（阈值 {a.threshold:g}" + (f" {unit}" if unit else "") + "）"
        lines.append(f"> 数值：{shown}")
    lines.append(f"> 说明：{a.message}")
    return Message(title, tuple(lines), ("查看详情 / details", link) if link else None)


def brief_message(region: str, week: str, link: str) -> Message:
    """The weekly push: the brief is a PDF behind the web app's login, so the message is its link."""
    return Message(f"【墒情简报】{region} {week}",
                   (f"> {region} {week} 墒情简报已生成（weekly soil-moisture brief）",),
                   ("下载 PDF / download", link))
