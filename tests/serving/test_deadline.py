"""serving/deadline.py: a request's time limit interrupts Python work with a 504, and never
raises inside ONNX Runtime (where a Python exception crashes the worker)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from serving.deadline import RequestTimeout, deadline, shielded


def test_a_limit_passing_in_a_shielded_block_is_raised_as_the_block_ends():
    finished = False
    with pytest.raises(RequestTimeout), deadline(0.01), shielded():
        time.sleep(0.05)  # the timer fires here; the handler holds it back
        finished = True
    assert finished


def test_a_shielded_block_within_the_limit_raises_nothing_and_leaves_nothing_pending():
    with deadline(1), shielded():
        pass
    with shielded():  # no limit armed: a shield alone never raises
        time.sleep(0.001)
    with pytest.raises(RequestTimeout), deadline(0.01):
        while True:
            pass


def test_shields_on_other_threads_do_not_hold_back_the_main_threads_limit():
    entered, release = threading.Event(), threading.Event()

    def shielded_elsewhere() -> None:
        with shielded():
            entered.set()
            release.wait(5)

    other = threading.Thread(target=shielded_elsewhere)
    other.start()
    entered.wait(5)
    try:
        with pytest.raises(RequestTimeout), deadline(0.01):
            give_up = time.monotonic() + 2
            while time.monotonic() < give_up:
                pass
    finally:
        release.set()
        other.join()


# Sweeps the limit across one prediction's duration, so that the timer fires at every point of
# it, ONNX Runtime's run included. Unshielded, this process died of SIGSEGV within 250 tries.
SWEEP = """
import json, sys
from serving.deadline import RequestTimeout, deadline
from serving.model.fast import load_fast_model
fast, detail = load_fast_model(sys.argv[1])
assert fast is not None, detail
rows = json.loads(fast.metadata["check"])["rows"]
expected = fast.predict(rows)
outcomes = {"timeout": 0, "answered": 0, "wrong": 0}
for i in range(3000):
    try:
        with deadline(1e-6 * (1 + i % 400)):
            answer = fast.predict(rows)
    except RequestTimeout:
        outcomes["timeout"] += 1
    else:
        outcomes["answered" if answer == expected else "wrong"] += 1
print(json.dumps(outcomes))
"""


def test_limits_passing_inside_the_onnx_run_time_out_without_crashing(model_dir: Path):
    done = subprocess.run(
        [sys.executable, "-c", SWEEP, str(model_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcomes["timeout"] > 0 and outcomes["answered"] > 0, outcomes
    assert outcomes["wrong"] == 0, outcomes
