"""The compose stack cannot be started here (no Docker engine), so its file is checked instead:
valid YAML, every referenced file present, every nongyun command a real subcommand with options it
accepts, every variable given in .env.example, and InfluxDB pinned to 2.x (3.x has no Flux)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from service.cli import main
from service.settings import SETTINGS
from tests.conftest import REPO

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _env_example() -> dict[str, str]:
    pairs = [line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines()
             if line and not line.startswith("#")]
    return {k: v for k, v in pairs}


def test_every_bind_mounted_file_and_the_build_context_exist() -> None:
    for name, svc in SERVICES.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: {source} is missing"
        if "build" in svc:
            assert (REPO / svc["build"] / "Dockerfile").exists()


def test_every_nongyun_command_is_a_real_subcommand_with_valid_options() -> None:
    runner = CliRunner()
    commands = [svc["command"] for svc in SERVICES.values() if (svc.get("command") or [""])[0] == "nongyun"]
    assert {c[1] for c in commands} == {"ingest", "web", "jobs"}
    setup = SERVICES["broker-config"]["entrypoint"][-1]  # sh -c "umask 077 && nongyun broker-config ... >> file"
    commands.append(setup.split("&& ", 1)[1].split(" >>")[0].split())
    for command in commands:
        assert command[1] in main.commands
        # --help after the options: click still parses (and rejects unknown) options first
        result = runner.invoke(main, [*command[1:], "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_two_ingest_workers_share_the_subscription_with_distinct_client_ids() -> None:
    ingest = [svc for svc in SERVICES.values() if svc.get("command") == ["nongyun", "ingest"]]
    assert len(ingest) == 2
    ids = {svc["environment"]["NONGYUN_MQTT_CLIENT_ID"] for svc in ingest}
    assert len(ids) == 2
    assert all(svc["environment"]["NONGYUN_MQTT_SHARED_GROUP"] == "nongyun" for svc in ingest)


def test_every_variable_is_in_env_example_and_every_setting_variable_is_documented() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
    example = _env_example()
    assert used - set(example) == set()
    known = {s.env for s in SETTINGS}
    for svc in SERVICES.values():
        if svc.get("image") != "nongyun:latest":
            continue
        env = svc.get("environment", {})
        for key in env:
            if key.startswith(("NONGYUN_", "INFLUXDB_V2_")):
                assert key in known, f"{key} is not a nongyun setting"
                assert f"`{key}`" in README


def test_influxdb_is_pinned_to_2x_and_mosquitto_refuses_anonymous_clients() -> None:
    assert re.fullmatch(r"influxdb:2\.\d+(\.\d+)?", SERVICES["influxdb"]["image"])
    conf = (REPO / "config/mosquitto/mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "persistence true" in conf
    assert all("healthcheck" in SERVICES[s] for s in ("mosquitto", "influxdb", "web"))


def test_the_broker_uses_what_broker_config_writes_and_offers_tls() -> None:
    """The compose broker loads the dynamic-security file broker-config writes (before it starts), with
    the payload limit of the generated snippet; each service process logs in as its own user."""
    from service import broker_config as bc

    conf = (REPO / "config/mosquitto/mosquitto.conf").read_text()
    snippet = bc.conf_snippet("/mosquitto/auth/dynamic-security.json")
    for line in snippet.splitlines():
        if not line.startswith("#"):
            assert line in conf.splitlines(), line
    settings = [line.split()[0] for line in conf.splitlines() if line and not line.startswith("#")]
    assert "password_file" not in settings and "acl_file" not in settings  # the plugin replaces both
    assert SERVICES["mosquitto"]["depends_on"]["broker-config"]["condition"] == "service_completed_successfully"
    assert "--dynsec-path /mosquitto/auth/dynamic-security.json" in SERVICES["broker-config"]["entrypoint"][-1]
    users = {name: svc["environment"]["NONGYUN_MQTT_URL"].split("//")[1].split(":")[0]
             for name, svc in SERVICES.items() if name in ("ingest-1", "ingest-2", "jobs")}
    assert users == {"ingest-1": "nongyun-ingest-1", "ingest-2": "nongyun-ingest-2", "jobs": "nongyun-jobs"}
    for name in ("ingest-1", "ingest-2"):  # client id == user name: the plugin binds them
        assert SERVICES[name]["environment"]["NONGYUN_MQTT_CLIENT_ID"] == users[name]
    assert "8883:8883" in SERVICES["mosquitto"]["ports"]
    tls = (REPO / "config/mosquitto/conf.d/tls.conf.example").read_text()
    assert "listener 8883" in tls and "certfile /mosquitto/certs/" in tls
    assert any(v.startswith("mosquitto-certs:/mosquitto/certs") for v in SERVICES["mosquitto"]["volumes"])


def test_the_dockerfile_installs_the_deploy_extra_for_gunicorn() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "[deploy]" in dockerfile
    assert Path(REPO / "package-lock.json").exists()


def test_the_dockerfile_builds_a_wheel_with_charts_and_installs_the_tested_versions() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "NONGYUN_REQUIRE_ASSETS=1 pip wheel" in dockerfile  # no image whose dashboards cannot draw
    assert "-c constraints.txt" in dockerfile and (REPO / "constraints.txt").is_file()
    copies = [line.split()[1:-1] for line in dockerfile.splitlines()
              if line.startswith("COPY ") and "--from" not in line]
    copied = {word for words in copies for word in words}
    assert {"setup.py", "MANIFEST.in", "package-lock.json", "constraints.txt"} <= copied
    assert all((REPO / name).exists() for name in copied)
