"""A real ``nongyun web`` process on a free loopback port, with a data folder of its own, and a
small HTTP client that carries the session cookie by hand, the way a copied cookie travels.

The process is started with the CLI exactly as an operator would (``python -m service.cli web``),
accounts are made on its data folder before it starts (the real Argon2 parameters), and it is
stopped by its own pid only. Its stderr is kept in a file: every password check it runs leaves a
line there (``password check for 'NAME' from ADDR: ...``), which is how the tests count checks.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from service.auth import open_accounts
from service.context import build
from service.settings import load
from service.times import now_ms
from tests.brokers import free_port
from tests.conftest import CONFIG, REPO

PASSWORD = "correct horse battery staple"
ZX = "211204101"
COOKIE = "nongyun_session"
START_TIMEOUT_S = 30.0


@dataclass
class Server:
    data_dir: Path
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def checks(self, address: str, username: str | None = None) -> int:
        """Password checks the server ran for this client address (and account, when given)."""
        who = re.escape(repr(username)) if username is not None else r"'[^']*'"
        return len(re.findall(rf"password check for {who} from {re.escape(address)}: ", self.log()))

    def rss_kib(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) of the server process, in KiB."""
        text = Path(f"/proc/{self.pid}/status").read_text()
        rss = int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1))  # type: ignore[union-attr]
        hwm = int(re.search(r"^VmHWM:\s+(\d+) kB", text, re.M).group(1))  # type: ignore[union-attr]
        return rss, hwm

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # our own child, by its pid
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def environment(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """The parent's environment without any nongyun or InfluxDB setting, plus this server's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NONGYUN_", "INFLUXDB_"))}
    env.update({"NONGYUN_CONFIG": str(CONFIG), "NONGYUN_DATA_DIR": str(data_dir), "NONGYUN_STORE": "sqlite",
                "NONGYUN_HTTP": f"127.0.0.1:{port}", "NONGYUN_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}",
                "NONGYUN_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def add_accounts(data_dir: Path, accounts: dict[str, tuple[str, str]]) -> None:
    """Accounts (name → (role, scope)) made through the Accounts API on the server's data folder."""
    settings = load(CONFIG, env={}, overrides={"store.data_dir": str(data_dir)})
    made = open_accounts(settings.data_dir, build(settings).tree)
    for name, (role, scope) in accounts.items():
        made.add(name, PASSWORD, role, scope, now_ms())


def cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``nongyun ARGS`` on the server's data folder, as an operator at the same host runs it."""
    env = environment(data_dir, 8080)  # not listened on: the command only opens the data folder
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def start(folder: Path, accounts: dict[str, tuple[str, str]] | None = None, **extra: str) -> Server:
    data_dir = folder / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if accounts:
        add_accounts(data_dir, accounts)
    server = Server(data_dir, free_port(), folder / "server.log")
    with server.log_path.open("wb") as log:
        server.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "web"], cwd=REPO,
                                       env=environment(data_dir, server.port, **extra),
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"nongyun web exited with {server.proc.returncode}:\n{server.log()}")
        try:
            requests.get(f"{server.url}/login", timeout=2, allow_redirects=False)
            return server
        except requests.ConnectionError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"nongyun web did not answer within {START_TIMEOUT_S} s:\n{server.log()}")


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class _From(HTTPAdapter):
    """Connections from one source address: any of 127.0.0.0/8 reaches the server on 127.0.0.1,
    so one test machine is many real clients, with no proxy header to trust or forge."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)  # type: ignore[no-untyped-call]


@dataclass
class Browser:
    """One browser at one client address (in 127.0.0.0/8), with its session cookie sent by hand,
    so a copy of it can be replayed."""

    server: Server
    address: str
    cookie: str | None = None
    token: str = ""
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.http.mount("http://", _From(self.address))

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        out = {}
        if self.cookie is not None:
            out["Cookie"] = f"{COOKIE}={self.cookie}"
        return out | (extra or {})

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                **kwargs: object) -> requests.Response:
        resp = self.http.request(method, f"{self.server.url}{path}", headers=self.headers(headers),
                                 allow_redirects=False, timeout=30, **kwargs)  # type: ignore[arg-type]
        self.http.cookies.clear()  # the cookie travels only by hand
        set_cookie = resp.cookies.get(COOKIE)
        if set_cookie is not None:
            self.cookie = set_cookie
        return resp

    def form(self, path: str = "/login") -> str:
        """Open a form page; remembers (and returns) its CSRF token."""
        page = self.request("GET", path)
        found = CSRF.search(page.text)
        assert found, page.text[:300]
        self.token = found.group(1)
        return self.token

    def login(self, username: str, password: str = PASSWORD) -> requests.Response:
        self.form()
        return self.post_login(username, password)

    def post_login(self, username: str, password: str) -> requests.Response:
        return self.request("POST", "/login", data={"username": username, "password": password,
                                                    "csrf_token": self.token, "next": "/"})
