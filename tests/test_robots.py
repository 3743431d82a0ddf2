"""企业微信 and 钉钉 group robots against fakes on loopback (pytest-httpserver): the exact markdown
bodies, DingTalk's URL signature checked the way DingTalk checks it, retries then dead letters in
/api/v1/health while the jobs runner goes on, the weekly brief push, and secrets kept out of sight."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from service.cli import main
from service.context import Context
from service.errors import SettingsError
from service.jobs import start_jobs
from service.jobs.config import AlertsConfig
from service.jobs.outbox import FILE, Outbox, read_stats
from service.jobs.robots import PERMANENT_ERRCODES, Answer, dingtalk_sign, interpret
from service.jobs.runner import JobRunner
from service.store.base import Alert
from service.store.sqlite import SqliteStore
from service.times import parse_rfc3339
from service.web import create_app
from tests.conftest import CONFIG
from tests.jobs_support import Clock, Recorder

HOUR = 3_600_000
VILLAGE, OTHER = "211204101203", "211204102200"  # 张相镇 东二台子村; 杨木林子镇 前杨木林子村
T0 = parse_rfc3339("2026-06-10T00:00:00+08:00")
PUBLIC = "https://nongyun.example.org"
WECOM_KEY = "wk-0f3a9c2e-SECRET-5b7d"
DING_TOKEN = "dt-77aa31-SECRET-token"
DING_SECRET = "SEC9e1f0c-very-SECRET-4d2b8a"
FAST = "[notify]\nattempts = 3\nbackoff_s = 0.05\nbackoff_max_s = 0.2\n"


def configured(ctx: Context, tmp_path: Path, channels: str, public_url: str = PUBLIC) -> Context:
    """The repository's alerts.toml plus ``channels``, loaded by the real parser, and web.public_url."""
    path = tmp_path / "alerts.toml"
    path.write_text((CONFIG / "alerts.toml").read_text(encoding="utf-8") + "\n" + channels, encoding="utf-8")
    cfg = AlertsConfig.load(path, ctx.catalogue)
    return dataclasses.replace(ctx, settings=ctx.settings.with_overrides(web_public_url=public_url), alerts=cfg)


def drought(store: SqliteStore, village: str = VILLAGE, name: str = "东二台子村") -> Alert:
    found = store.open_alert(Alert(f"drought:{village}", "drought", "warning", village, None,
                                   f"{name} 土壤含水量 14.2% 已连续 48 小时低于 15%，注意旱情",
                                   T0 - 48 * HOUR, value=14.2, threshold=15.0))
    assert found is not None
    return found


def settled(data_dir: Path, timeout: float = 15.0) -> dict[str, Any]:
    """Wait (with a deadline) until the outbox holds nothing waiting; its per-channel stats."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = read_stats(data_dir / FILE)
        if stats and not any(s.queued for s in stats.values()):
            return {name: dataclasses.asdict(s) for name, s in stats.items()}
        time.sleep(0.02)
    raise AssertionError(f"outbox still busy: {read_stats(data_dir / FILE)}")


def wecom_robot(answers: list[dict[str, Any]] | None = None, gate: threading.Event | None = None
                ) -> Callable[[Request], Response]:
    """WeCom's webhook: the key in the query, JSON in; answers from ``answers`` in turn (then ok)."""
    left = list(answers or [])

    def handle(request: Request) -> Response:
        if gate is not None:
            gate.wait(5)
        doc = ({"errcode": 93000, "errmsg": "invalid webhook url"} if request.args.get("key") != WECOM_KEY
               else left.pop(0) if left else {"errcode": 0, "errmsg": "ok"})
        return Response(orjson.dumps(doc), content_type="application/json")

    return handle


def dingtalk_robot(secret: str) -> Callable[[Request], Response]:
    """DingTalk's check of a signed URL: the sign must be the HMAC of the timestamp (fresh to the hour)
    under the robot's secret, or the answer is errcode 310000."""
    def handle(request: Request) -> Response:
        ts, sign = request.args.get("timestamp", ""), request.args.get("sign", "")
        want = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest())
        fresh = ts.isdigit() and abs(int(ts) - time.time() * 1000) < HOUR
        ok = fresh and hmac.compare_digest(sign.encode(), want) and request.args.get("access_token") == DING_TOKEN
        doc = {"errcode": 0, "errmsg": "ok"} if ok else {"errcode": 310000, "errmsg": "sign not match"}
        return Response(orjson.dumps(doc), content_type="application/json")

    return handle


@pytest.fixture
def store(ctx: Context) -> Iterator[SqliteStore]:
    s = SqliteStore.from_settings(ctx.settings)
    yield s
    s.close()


@pytest.fixture
def runners() -> Iterator[list[JobRunner]]:
    made: list[JobRunner] = []
    yield made
    for r in made:
        r.shutdown()


def runner_for(ctx: Context, store: SqliteStore, runners: list[JobRunner], clock: Clock | None = None,
               publisher: Recorder | None = None) -> JobRunner:
    r = start_jobs(ctx, store, clock=clock or Clock(T0), publisher=publisher or Recorder(), start=False)
    runners.append(r)
    return r


# -- the bodies ---------------------------------------------------------------------------------------------

WECOM_DROUGHT = ("### 【旱情预警】张相镇 东二台子村\n"
                 "> 地点：张相镇 东二台子村\n"
                 "> 级别：警告\n"
                 "> 开始：2026-06-08 00:00\n"
                 "> 数值：14.2 % vol（阈值 15 % vol）\n"
                 "> 说明：东二台子村 土壤含水量 14.2% 已连续 48 小时低于 15%，注意旱情\n"
                 "[查看详情 / details](https://nongyun.example.org/r/211204101203)")


def test_a_drought_alert_reaches_wecom_and_dingtalk_as_their_exact_markdown(
        ctx: Context, store: SqliteStore, httpserver: HTTPServer, tmp_path: Path, runners: list[JobRunner]) -> None:
    httpserver.expect_request("/cgi-bin/webhook/send", method="POST").respond_with_handler(wecom_robot())
    httpserver.expect_request("/robot/send", method="POST").respond_with_handler(dingtalk_robot(DING_SECRET))
    ctx = configured(ctx, tmp_path, f'''
[[channels]]
type = "wecom"
region = "211204101"
kinds = ["drought"]
url = "{httpserver.url_for('/cgi-bin/webhook/send')}?key={WECOM_KEY}"

[[channels]]
type = "dingtalk"
region = "211204"
url = "{httpserver.url_for('/robot/send')}?access_token={DING_TOKEN}"
secret = "{DING_SECRET}"
at_mobiles = ["13800000000"]
''')
    drought(store)
    store.open_alert(Alert(f"frost:{OTHER}", "frost", "critical", OTHER, None, "霜冻", T0))  # DingTalk only
    runner = runner_for(ctx, store, runners)
    assert runner.run("alerts").outcome == "ok"
    stats = settled(ctx.settings.data_dir)
    assert stats["wecom-211204101"]["sent"] == 1 and stats["dingtalk-211204"]["sent"] == 2
    assert sum(s["dead_letters"] for s in stats.values()) == 0  # so every DingTalk signature was valid
    wecom = [orjson.loads(r.get_data()) for r, _ in httpserver.log if r.path == "/cgi-bin/webhook/send"]
    assert wecom == [{"msgtype": "markdown", "markdown": {"content": WECOM_DROUGHT}}]
    ding = [orjson.loads(r.get_data()) for r, _ in httpserver.log if r.path == "/robot/send"]
    [dry] = [d for d in ding if "旱情" in d["markdown"]["title"]]
    assert dry == {"msgtype": "markdown",
                   "markdown": {"title": "【旱情预警】张相镇 东二台子村",
                                "text": WECOM_DROUGHT.replace("\n", "\n\n") + "\n\n@13800000000"},
                   "at": {"atMobiles": ["13800000000"], "isAtAll": False}}
    assert all(r.headers["Content-Type"] == "application/json; charset=utf-8" for r, _ in httpserver.log)
    # run again: the alert was delivered once, nothing new goes out
    runner.run("station_health")
    settled(ctx.settings.data_dir)
    assert len(httpserver.log) == 3


def test_the_dingtalk_signature_is_the_documented_one_and_a_wrong_secret_fails(
        ctx: Context, store: SqliteStore, httpserver: HTTPServer, tmp_path: Path, runners: list[JobRunner]) -> None:
    # the published example value (timestamp 1700000000000, secret "secret") of an independent implementation
    assert dingtalk_sign("secret", 1_700_000_000_000) == "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"
    httpserver.expect_request("/right", method="POST").respond_with_handler(dingtalk_robot(DING_SECRET))
    httpserver.expect_request("/wrong", method="POST").respond_with_handler(dingtalk_robot(DING_SECRET))
    ctx = configured(ctx, tmp_path, FAST + f'''
[[channels]]
type = "dingtalk"
name = "right"
region = "211204101"
url = "{httpserver.url_for('/right')}?access_token={DING_TOKEN}"
secret = "{DING_SECRET}"

[[channels]]
type = "dingtalk"
name = "wrong"
region = "211204101"
url = "{httpserver.url_for('/wrong')}?access_token={DING_TOKEN}"
secret = "SECnot-the-robots-secret"
''')
    drought(store)
    runner_for(ctx, store, runners).run("alerts")
    stats = settled(ctx.settings.data_dir)
    [(right, _)] = [(r, a) for r, a in httpserver.log if r.path == "/right"]
    ts, sign = right.args["timestamp"], right.args["sign"]
    assert abs(int(ts) - time.time() * 1000) < 60_000  # milliseconds, signed just now
    want = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(), hashlib.sha256).digest())
    assert sign.encode() == want  # recomputed here from the request's own timestamp
    wrong = base64.b64encode(hmac.new(b"SECnot-the-robots-secret", f"{ts}\n{DING_SECRET}".encode(),
                                      hashlib.sha256).digest())
    assert sign.encode() != wrong
    assert stats["right"]["sent"] == 1 and stats["right"]["dead_letters"] == 0
    # the robot refuses the wrongly signed URL (310000): no retry can fix that, dead after one attempt
    assert [r.path for r, _ in httpserver.log].count("/wrong") == 1
    assert stats["wrong"]["dead_letters"] == 1 and stats["wrong"]["last_error"] == "errcode 310000: sign not match"


# -- retries, dead letters, and a runner that is never held up -------------------------------------------------


def test_a_rate_limited_robot_is_retried_then_counted_as_dead_while_the_runner_goes_on(
        ctx: Context, store: SqliteStore, httpserver: HTTPServer, tmp_path: Path, runners: list[JobRunner]) -> None:
    gate = threading.Event()  # the robot hangs until the runner has done its other work
    limited = {"errcode": 45009, "errmsg": "api freq out of limit"}
    httpserver.expect_request("/cgi-bin/webhook/send").respond_with_handler(wecom_robot([limited] * 10, gate))
    ctx = configured(ctx, tmp_path, FAST + f'''
[[channels]]
type = "wecom"
region = "211204101"
url = "{httpserver.url_for('/cgi-bin/webhook/send')}?key={WECOM_KEY}"
timeout_s = 8
''')
    drought(store)
    recorder = Recorder()
    clock = Clock(T0)
    runner = runner_for(ctx, store, runners, clock, recorder)
    started = time.perf_counter()
    assert runner.run("alerts").outcome == "ok"  # queues the message; the worker is now stuck in the robot
    for job in ("rollups", "station_health"):
        clock.now += 600_000
        assert runner.run(job).outcome == "ok"
    other = store.open_alert(Alert(f"frost:{OTHER}", "frost", "critical", OTHER, None, "霜冻", T0))
    assert other is not None
    clock.now += 600_000
    assert runner.run("alerts").outcome == "ok"  # another alert goes out over MQTT meanwhile
    assert time.perf_counter() - started < 2.0
    assert any(doc["region"] == OTHER and doc["alerts"] for _, doc in recorder.sent)
    assert not gate.is_set() and len(httpserver.log) <= 1  # the robot has not even answered yet
    gate.set()
    stats = settled(ctx.settings.data_dir)
    assert len(httpserver.log) == 3  # attempts = 3
    assert stats["wecom-211204101"] == {"queued": 0, "sent": 0, "dead_letters": 1, "retries": 2,
                                        "last_error": "errcode 45009: api freq out of limit",
                                        "last_error_at": stats["wecom-211204101"]["last_error_at"]}
    health = create_app(ctx, store).test_client().get("/api/v1/health").get_json()
    assert health["notifications"]["dead_letters"] == 1
    channel = health["notifications"]["channels"]["wecom-211204101"]
    assert channel["dead_letters"] == 1 and channel["last_error"].startswith("errcode 45009")
    assert channel["last_error_at"].endswith("+08:00")


@pytest.mark.parametrize("failures", [["503"], ["503", "timeout"]])
def test_a_robot_failing_for_a_while_gets_the_message_in_the_end(
        failures: list[str], ctx: Context, store: SqliteStore, httpserver: HTTPServer, tmp_path: Path,
        runners: list[JobRunner]) -> None:
    left = list(failures)

    def flaky(request: Request) -> Response:
        what = left.pop(0) if left else "ok"
        if what == "timeout":
            time.sleep(0.7)  # past the channel's timeout_s (the next attempt waits for this one: one server thread)
        if what == "503":
            return Response("busy", status=503)
        return Response(b'{"errcode":0,"errmsg":"ok"}', content_type="application/json")

    httpserver.expect_request("/send").respond_with_handler(flaky)
    ctx = configured(ctx, tmp_path, FAST + f'''
[[channels]]
type = "wecom"
region = "211204101"
url = "{httpserver.url_for('/send')}?key={WECOM_KEY}"
timeout_s = 0.5
''')
    drought(store)
    runner_for(ctx, store, runners).run("alerts")
    stats = settled(ctx.settings.data_dir)["wecom-211204101"]
    assert (stats["sent"], stats["dead_letters"], stats["retries"]) == (1, 0, len(failures))
    assert stats["last_error"] == ("HTTP 503" if failures[-1] == "503" else "no answer in 0.5 s")


def test_queued_messages_and_dead_letters_survive_a_restart(
        ctx: Context, store: SqliteStore, httpserver: HTTPServer, tmp_path: Path, runners: list[JobRunner]) -> None:
    httpserver.expect_request("/send").respond_with_handler(wecom_robot())
    ctx = configured(ctx, tmp_path, f'''
[[channels]]
type = "wecom"
region = "211204101"
url = "{httpserver.url_for('/send')}?key={WECOM_KEY}"
''')
    data = ctx.settings.data_dir
    outbox = Outbox.in_dir(data)  # what a runner that died left behind: one dead, one waiting
    outbox.put("alert:2:1:gone", "gone", b"{}")
    [gone] = outbox.take(outbox.clock(), limit=1)
    assert outbox.settle(gone, Answer(False, False, "HTTP 404"), outbox.clock()) == "dead"
    assert outbox.put("alert:1:1:wecom-211204101", "wecom-211204101", b'{"msgtype":"markdown"}')
    assert not outbox.put("alert:1:1:wecom-211204101", "wecom-211204101", b'{"again":1}')  # same key: once
    outbox.close()
    runner_for(ctx, store, runners).run("station_health")  # the next holder's first delivery drains it
    stats = settled(data)
    assert stats["wecom-211204101"]["sent"] == 1 and stats["gone"]["dead_letters"] == 1
    assert [orjson.loads(r.get_data()) for r, _ in httpserver.log] == [{"msgtype": "markdown"}]


# -- the weekly brief ---------------------------------------------------------------------------------------


def test_the_weekly_brief_link_is_pushed_once_at_its_local_weekday_and_hour(
        ctx: Context, store: SqliteStore, httpserver: HTTPServer, tmp_path: Path, runners: list[JobRunner]) -> None:
    httpserver.expect_request("/send").respond_with_handler(wecom_robot())
    ctx = configured(ctx, tmp_path, f'''
[notify]
brief_weekday = 1
brief_hour = 8

[[channels]]
type = "wecom"
region = "211204101"
kinds = ["frost"]
weekly_brief = true
url = "{httpserver.url_for('/send')}?key={WECOM_KEY}"
''')
    clock = Clock(parse_rfc3339("2026-06-08T07:55:00+08:00"))  # a Monday, 5 minutes early
    runner = runner_for(ctx, store, runners, clock)
    assert runner.run("weekly_brief").summary == "weekly brief: not due"
    pushed = []
    for at in ("2026-06-08T08:05:00+08:00", "2026-06-08T08:25:00+08:00", "2026-06-09T07:55:00+08:00"):
        clock.now = parse_rfc3339(at)
        pushed.append(runner.run("weekly_brief").summary)
    assert pushed == ["weekly brief 2026-W23: queued 1", "weekly brief 2026-W23: queued 0",
                      "weekly brief 2026-W23: queued 0"]
    settled(ctx.settings.data_dir)
    [(request, _)] = httpserver.log
    link = f"{PUBLIC}/api/v1/reports/moisture-weekly?region=211204101&week=2026-W23&format=pdf"
    assert orjson.loads(request.get_data()) == {"msgtype": "markdown", "markdown": {"content": (
        "### 【墒情简报】张相镇 2026-W23\n"
        "> 张相镇 2026-W23 墒情简报已生成（weekly soil-moisture brief）\n"
        f"[下载 PDF / download]({link})")}}


def test_without_a_public_url_the_weekly_brief_is_not_pushed(ctx: Context, store: SqliteStore, tmp_path: Path,
                                                             runners: list[JobRunner]) -> None:
    ctx = configured(ctx, tmp_path, '[[channels]]\ntype = "wecom"\nregion = "211204101"\nweekly_brief = true\n'
                                    'url = "http://127.0.0.1:9/send"\n', public_url="")
    runner = runner_for(ctx, store, runners, Clock(parse_rfc3339("2026-06-08T08:05:00+08:00")))
    assert runner.run("weekly_brief").summary == "weekly brief: web.public_url is not set"
    assert read_stats(ctx.settings.data_dir / FILE) == {}


# -- configuration and secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize(("block", "message"), [
    ('type = "wecom"\nregion = "211204101"\nkinds = ["drougth"]\nurl = "https://x/y"\n', "drougth"),
    ('type = "wecom"\nregion = "211204101"\nurl = "https://x/y"\nurl_env = "X"\n', "exactly one of url"),
    ('type = "wecom"\nregion = "211204101"\nurl = "https://x/y"\nsecret = "s"\n', "DingTalk URLs only"),
    ('type = "sms"\nregion = "211204101"\nurl = "https://x/y"\n', "channels.0.type"),
    ('type = "wecom"\nregion = "2112"\nurl = "https://x/y"\n', "channels.0.region"),
])
def test_a_bad_channel_is_refused_with_its_field(block: str, message: str, ctx: Context, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=message) as err:
        configured(ctx, tmp_path, "[[channels]]\n" + block)
    assert "https://x/y" not in str(err.value)


def test_a_missing_secret_variable_stops_the_runner_naming_it(ctx: Context, store: SqliteStore, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NONGYUN_TEST_DING_URL", f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}")
    monkeypatch.delenv("NONGYUN_TEST_DING_SECRET", raising=False)
    ctx = configured(ctx, tmp_path, '[[channels]]\ntype = "dingtalk"\nregion = "211204"\n'
                                    'url_env = "NONGYUN_TEST_DING_URL"\nsecret_env = "NONGYUN_TEST_DING_SECRET"\n')
    with pytest.raises(SettingsError, match=r"dingtalk-211204: \$NONGYUN_TEST_DING_SECRET is not set") as err:
        start_jobs(ctx, store, clock=Clock(T0), publisher=Recorder(), start=False)
    assert DING_TOKEN not in str(err.value)


def test_secrets_never_reach_the_log_health_or_settings(
        ctx: Context, store: SqliteStore, httpserver: HTTPServer, tmp_path: Path, runners: list[JobRunner],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_request("/cgi-bin/webhook/send").respond_with_handler(
        wecom_robot([{"errcode": 45009, "errmsg": "api freq out of limit"}]))
    httpserver.expect_request("/robot/send").respond_with_handler(dingtalk_robot("SECsomething-else"))
    monkeypatch.setenv("NONGYUN_TEST_WECOM_URL", f"{httpserver.url_for('/cgi-bin/webhook/send')}?key={WECOM_KEY}")
    monkeypatch.setenv("NONGYUN_TEST_DING_URL", f"{httpserver.url_for('/robot/send')}?access_token={DING_TOKEN}")
    monkeypatch.setenv("NONGYUN_TEST_DING_SECRET", DING_SECRET)
    channels = FAST + ('[[channels]]\ntype = "wecom"\nregion = "211204101"\nurl_env = "NONGYUN_TEST_WECOM_URL"\n\n'
                       '[[channels]]\ntype = "dingtalk"\nregion = "211204"\nurl_env = "NONGYUN_TEST_DING_URL"\n'
                       'secret_env = "NONGYUN_TEST_DING_SECRET"\n')
    ctx = configured(ctx, tmp_path, channels)
    caplog.set_level(logging.DEBUG)
    drought(store)
    runner_for(ctx, store, runners).run("alerts")
    stats = settled(ctx.settings.data_dir)
    assert stats["wecom-211204101"]["retries"] == 1 and stats["dingtalk-211204"]["dead_letters"] == 1
    ours = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith("werkzeug"))
    assert "errcode 45009" in ours and "errcode 310000" in ours  # the failures are logged ...
    health = create_app(ctx, store).test_client().get("/api/v1/health").get_data(as_text=True)
    shown = ours + health + repr(ctx.alerts) + str(ctx.alerts.model_dump())
    for secret in (WECOM_KEY, DING_TOKEN, DING_SECRET):
        assert secret not in shown  # ... without the key, the token or the signing secret
    # `nongyun settings` with the secrets in its environment and a channel written into alerts.toml
    folder = tmp_path / "config"
    folder.mkdir()
    for f in CONFIG.iterdir():
        if f.is_file():
            (folder / f.name).write_bytes(f.read_bytes())
    (folder / "alerts.toml").write_text((tmp_path / "alerts.toml").read_text(encoding="utf-8") + (
        f'\n[[channels]]\ntype = "dingtalk"\nname = "inline"\nregion = "211204102"\n'
        f'url = "https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}"\nsecret = "{DING_SECRET}"\n'),
        encoding="utf-8")
    env = {"NONGYUN_CONFIG": str(folder), "NONGYUN_DATA_DIR": str(tmp_path / "data2"),
           "NONGYUN_PUBLIC_URL": PUBLIC + "/", "NONGYUN_TEST_DING_SECRET": DING_SECRET}
    out = CliRunner().invoke(main, ["settings"], env=env)
    assert out.exit_code == 0, out.output
    assert f"web.public_url               {PUBLIC}" in out.output
    for secret in (WECOM_KEY, DING_TOKEN, DING_SECRET):
        assert secret not in out.output


# -- the answer rules, at their boundaries ------------------------------------------------------------------


@given(st.integers(100, 599), st.integers(-2, 400_000))
def test_an_answer_is_delivered_only_on_2xx_with_errcode_0(status: int, errcode: int) -> None:
    got = interpret(status, orjson.dumps({"errcode": errcode, "errmsg": "x"}), errcode=True)
    assert got.ok == (200 <= status < 300 and errcode == 0)
    if status >= 500 or status == 429:
        assert got.retry
    elif 200 <= status < 300 and errcode != 0:
        assert got.retry == (errcode not in PERMANENT_ERRCODES)
    elif not got.ok:
        assert not got.retry  # 4xx: the request itself is wrong
    assert interpret(status, b"not json", errcode=False).ok == (200 <= status < 300)


def test_a_public_url_is_checked_and_a_rejected_one_is_shown_without_its_password() -> None:
    from service.settings import load

    assert load(CONFIG, env={"NONGYUN_PUBLIC_URL": "https://nongyun.example.org/qh/"}).values.web_public_url == (
        "https://nongyun.example.org/qh")
    with pytest.raises(SettingsError, match=r"web\.public_url") as err:
        load(CONFIG, env={"NONGYUN_PUBLIC_URL": "https://staff:hunter2-pw@nongyun.example.org"})
    assert "hunter2-pw" not in str(err.value) and "staff:****@" in str(err.value)
    with pytest.raises(SettingsError, match=r"web\.public_url"):
        load(CONFIG, env={"NONGYUN_PUBLIC_URL": "nongyun.example.org"})
