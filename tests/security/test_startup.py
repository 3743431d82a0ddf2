"""A web process refuses to start with a key anybody could guess (issue 12): a one-character
``web.secret_key`` signs cookies that are forged offline in moments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.security.server import environment


def test_a_short_secret_key_stops_the_web_process_with_a_message_naming_it(tmp_path: Path) -> None:
    env = environment(tmp_path / "data", 8080, NONGYUN_SECRET_KEY="x")
    done = subprocess.run([sys.executable, "-m", "service.cli", "web"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "web.secret_key (NONGYUN_SECRET_KEY)" in done.stderr and "32" in done.stderr
    assert "'x'" not in done.stderr  # a secret is never printed, not even a bad one
