"""The demo's in-process broker carries paho QoS 1 traffic and keeps persistent sessions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from service.broker import Broker, ensure_broker, speaks_mqtt
from tests.brokers import Mosquitto, free_port


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def amqtt_broker() -> Iterator[Broker]:
    port = free_port()
    broker = ensure_broker("127.0.0.1", port)
    assert broker is not None, "nothing listened there, so ensure_broker must start one"
    yield broker
    broker.stop()


class Subscriber:
    """A paho subscriber recording payloads in arrival order."""

    def __init__(self, port: int, client_id: str, clean: bool) -> None:
        self.got: list[bytes] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("t/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.got.append(m.payload)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_all(port: int, payloads: list[bytes]) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub")
    acked: set[int] = set()
    pub.on_publish = lambda c, u, mid, rc, p: acked.add(mid)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    mids = []
    for body in payloads:
        info = pub.publish("t/x", body, qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
        mids.append(info.mid)
    wait_for(lambda: acked.issuperset(mids))
    pub.disconnect()
    pub.loop_stop()


def test_qos1_messages_all_arrive_in_order(amqtt_broker: Broker) -> None:
    sub = Subscriber(amqtt_broker.port, "sub-live", clean=True)
    payloads = [f"m{i}".encode() for i in range(200)]
    publish_all(amqtt_broker.port, payloads)
    wait_for(lambda: len(sub.got) >= 200)
    sub.close()
    assert sub.got == payloads


def test_persistent_session_keeps_the_backlog(amqtt_broker: Broker) -> None:
    sub = Subscriber(amqtt_broker.port, "sub-persistent", clean=False)
    sub.close()  # offline: the broker must queue QoS 1 messages for this session
    payloads = [f"b{i}".encode() for i in range(200)]
    publish_all(amqtt_broker.port, payloads)
    again = Subscriber(amqtt_broker.port, "sub-persistent", clean=False)
    wait_for(lambda: len(again.got) >= 200)
    again.close()
    assert again.got == payloads


def test_uses_a_broker_that_already_answers(mosquitto: Mosquitto) -> None:
    assert ensure_broker("127.0.0.1", mosquitto.port) is None


def test_stop_frees_the_port(amqtt_broker: Broker) -> None:
    assert speaks_mqtt("127.0.0.1", amqtt_broker.port)
    amqtt_broker.stop()
    assert not speaks_mqtt("127.0.0.1", amqtt_broker.port)
