"""bench/processes.py on plain shell processes: start-up failures, and stopping a whole group."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil
import pytest

from bench.processes import exit_code, free_port, running, stop

pytestmark = pytest.mark.slow  # real (if tiny) processes


def test_a_command_that_exits_before_it_is_ready_fails_with_its_code_and_log(tmp_path: Path):
    url = f"http://127.0.0.1:{free_port()}/ready"
    log = tmp_path / "boom.log"
    with (
        pytest.raises(RuntimeError, match="exited with 3") as failure,
        running(["sh", "-c", "echo boom; exit 3"], url, log=log, timeout=30),
    ):
        pass
    assert "boom" in str(failure.value)


def test_exit_code_does_not_reap_and_stop_ends_what_the_leader_left_in_its_group(tmp_path: Path):
    pid_file = tmp_path / "child.pid"
    process = subprocess.Popen(
        ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; exit 5"], start_new_session=True
    )
    deadline = time.monotonic() + 10
    while exit_code(process) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert exit_code(process) == 5
    assert process.returncode is None  # still a zombie: its pid names the group
    child = psutil.Process(int(pid_file.read_text()))
    assert child.is_running()

    assert stop(process) == 5
    child.wait(timeout=10)  # raises if the sleep outlived the stop
