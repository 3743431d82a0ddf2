"""mqtts:// end to end: a device → Mosquitto's TLS listener → ingest → SqliteStore, both sides
verifying the broker against a CA made in the test; a client that does not trust that CA gets nothing in."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from sensors.device import DeviceClient
from service.context import Context
from service.ingest import connect
from service.payloads import PayloadDecoder
from service.settings import MqttAddress
from service.store.sqlite import SqliteStore
from service.times import now_ms
from tests.brokers import Mosquitto, free_port, make_tls_files, tls_listener, wait_port
from tests.test_ingest import ALL_VILLAGES, STATION, count_series, wait_for

RECORDS = 25


def test_a_tls_round_trip_device_to_store(ctx: Context, tmp_path: Path) -> None:
    files = make_tls_files(tmp_path / "tls")
    port = free_port()
    broker = Mosquitto(tmp_path / "broker", extra_conf=tls_listener(port, files), persistence=False).start()
    wait_port(port)
    store = SqliteStore(tmp_path / "store" / "nongyun.sqlite3")
    url = f"mqtts://127.0.0.1:{port}"
    settings = ctx.settings.with_overrides(mqtt_url=url, mqtt_ca_file=str(files["ca"]), mqtt_client_id="tls-ingest")
    assert settings.mqtt.tls and settings.mqtt.port == port
    ingest = connect(settings, PayloadDecoder(ctx.registry, ctx.catalogue), store)
    ingest.start()
    device = DeviceClient(STATION, url, tmp_path / "device", ca_file=str(files["ca"]))
    try:
        assert ingest.wait_subscribed(10), ingest.state()
        device.start()
        start = now_ms() - 3_600_000
        for i in range(RECORDS):
            device.publish_telemetry(start + i * 1000, {"soil_moisture": 20.0 + i / 10})
        assert device.wait_sent(15)
        wait_for(lambda: count_series(store, "soil_moisture", start, now_ms(), STATION) == RECORDS, 15,
                 "every record stored")
        assert store.latest(ALL_VILLAGES, 0)[STATION].values["soil_moisture"][1] == pytest.approx(22.4)
    finally:
        device.close()
        ingest.stop()
        store.close()
        broker.stop()


def test_mqtts_defaults_to_8883_and_a_broker_outside_the_ca_is_refused(tmp_path: Path) -> None:
    assert MqttAddress.parse("mqtts://d:p@broker.example").port == 8883
    assert MqttAddress.parse("mqtt://broker.example").port == 1883 and not MqttAddress.parse("mqtt://h").tls
    files = make_tls_files(tmp_path / "tls")
    other = make_tls_files(tmp_path / "other")  # a CA that did not sign the broker's certificate
    port = free_port()
    broker = Mosquitto(tmp_path / "broker", extra_conf=tls_listener(port, files), persistence=False).start()
    try:
        wait_port(port)
        untrusting = ssl.create_default_context(cafile=str(other["ca"]))  # what paho's tls_set builds
        with socket.create_connection(("127.0.0.1", port)) as raw, pytest.raises(ssl.SSLCertVerificationError):
            untrusting.wrap_socket(raw, server_hostname="127.0.0.1")
        trusting = ssl.create_default_context(cafile=str(files["ca"]))
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                trusting.wrap_socket(raw, server_hostname="127.0.0.1"):
            pass
    finally:
        broker.stop()
