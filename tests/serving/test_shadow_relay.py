"""The wire between the workers and the shadow scorer process (serving.evidence.relay) and the
scorer's queue (serving.server.shadow_scorer.Inbox), on real Unix sockets: requests split into
datagrams and back, and rows the scorer cannot take handed back (dropped) at once, never waited
for."""

from __future__ import annotations

import time

import pytest

from serving import metrics
from serving.evidence.relay import Relay, decode, encode, listen
from serving.evidence.shadow import Shadow
from serving.server.shadow_scorer import Inbox
from serving.store import ModelStore
from tests.e2e.evidence import total

ROW = {"Pclass": 3, "Sex": "male", "Age": 22.0, "Name": "Braund, Mr. Owen Harris", "Cabin": None}


def items(*sizes: int, version: str = "1") -> list:
    return [(version, [dict(ROW, SibSp=i) for i in range(n)], [i % 2 for i in range(n)])
            for n in sizes]  # fmt: skip


def test_requests_are_split_into_datagrams_of_at_most_the_row_limit_and_read_back_in_order():
    sent = items(3, 10, 1)
    datagrams = list(encode(sent, rows=4))
    received = [item for datagram, _ in datagrams for item in decode(datagram)]
    assert all(sum(len(rows) for _, rows, _ in carried) <= 4 for _, carried in datagrams)
    assert [row for _, rows, _ in received for row in rows] == [
        row for _, rows, _ in sent for row in rows
    ]
    assert [label for *_, labels in received for label in labels] == [
        label for *_, labels in sent for label in labels
    ]


@pytest.mark.parametrize("datagram", [b"", b"{}", b"[1, 2]", b"not json", b'[["1", [], []'])
def test_a_datagram_that_no_worker_wrote_is_refused(datagram):
    with pytest.raises(ValueError, match="not a shadow datagram"):
        decode(datagram)


def test_what_a_listening_scorer_receives_is_what_the_worker_sent(tmp_path):
    receiver = listen(tmp_path / "shadow.sock")
    sent = items(2, 300)
    assert Relay(tmp_path / "shadow.sock").send(sent) == []
    receiver.settimeout(5)
    received = []
    while sum(len(rows) for _, rows, _ in received) < 302:
        received += decode(receiver.recv(1 << 22))
    assert [row for _, rows, _ in received for row in rows] == [
        row for _, rows, _ in sent for row in rows
    ]


def test_with_no_scorer_listening_every_row_comes_back_to_be_counted(tmp_path):
    sent = items(2, 5)
    assert Relay(tmp_path / "nobody.sock").send(sent) == sent


def test_a_scorer_that_does_not_read_costs_the_worker_no_wait(tmp_path):
    listen(tmp_path / "shadow.sock")  # bound, never read: its queue fills
    relay = Relay(tmp_path / "shadow.sock")
    began, dropped = time.monotonic(), []
    for _ in range(200):
        dropped += relay.send(items(256))
    assert dropped  # the queue filled and the rest came back
    assert time.monotonic() - began < 10  # and nothing waited for room


def test_the_scorers_queue_keeps_at_most_its_rows_and_counts_the_rest_as_dropped(registered_model):
    store = ModelStore(f"models:/{registered_model.name}@nobody", registered_model.tracking_uri)
    inbox = Inbox(Shadow(store), limit=10)

    def dropped() -> float:
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in metrics.collected()
            for sample in family.samples
        }
        return total(samples, "serving_shadow_dropped_total", live_version="7")

    before = dropped()
    inbox.put(items(6, version="7"))
    inbox.put(items(4, version="7"))
    inbox.put(items(1, version="7"))  # past 10 rows
    assert dropped() - before == 1
    assert [len(rows) for _, rows, _ in inbox.take(0.1)] == [6]
    assert [len(rows) for _, rows, _ in inbox.take(0.1)] == [4]
    assert inbox.take(0.05) is None
