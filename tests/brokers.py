"""A real Mosquitto of the tests' own, on a free loopback port, with its own config and data folder.

Tests never share the machine's broker on 1883: parallel runs, persistent sessions and retained
messages would leak between them. Restartable, so fault tests can stop and start it mid-stream.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class Mosquitto:
    def __init__(self, workdir: Path, extra_conf: str = "", port: int | None = None,
                 persistence: bool = True) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true" if "allow_anonymous" not in extra_conf else "",
            "max_queued_messages 0",  # 0 = unlimited: a test backlog must never be dropped
            "max_inflight_messages 100",
            "persistent_client_expiration 1d",
            # as root Mosquitto drops to the mosquitto user, which cannot write a pytest folder:
            # persistence would fail silently and a restart lose every session
            "user root" if os.geteuid() == 0 else "",
        ]
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/", "autosave_interval 1"]
        lines.append(extra_conf)
        self.conf.write_text("\n".join(line for line in lines if line) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        self._log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=self._log, stderr=self._log)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its persistence file before it exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()


DYNSEC_PLUGIN = next((str(p) for p in (Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"),
                                       Path("/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so"),
                                       Path("/usr/lib/mosquitto_dynamic_security.so")) if p.exists()),
                     "/usr/lib/mosquitto_dynamic_security.so")


def with_broker_config(workdir: Path, auth_dir: Path, extra_conf: str = "") -> Mosquitto:
    """A Mosquitto that loads the conf snippet ``nongyun broker-config`` wrote into ``auth_dir``,
    with the dynamic-security plugin's path on this machine instead of the image's."""
    snippet = (auth_dir / "mosquitto-nongyun.conf").read_text(encoding="utf-8")
    lines = [f"plugin {DYNSEC_PLUGIN}" if line.startswith("plugin ") else line for line in snippet.splitlines()]
    return Mosquitto(workdir, extra_conf="\n".join(["allow_anonymous false", *lines, extra_conf]), persistence=False)


def make_tls_files(folder: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl CLI."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
        "-subj", "/CN=nongyun test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(cert),
        "-days", "2", "-extfile", str(ext))
    return {"ca": ca, "cert": cert, "key": key}


def tls_listener(port: int, files: dict[str, Path]) -> str:
    """Conf lines of a TLS listener on 127.0.0.1:port (Mosquitto: the lines after ``listener`` are its own)."""
    return "\n".join([f"listener {port} 127.0.0.1", f"cafile {files['ca']}", f"certfile {files['cert']}",
                      f"keyfile {files['key']}", "tls_version tlsv1.2"])
