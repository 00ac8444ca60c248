"""serving/registry/agent.py in-process, on a real sqlite registry copy: what it stages and
publishes, and how a worker's store (AgentSource) follows it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from serving.model.identity import IDENTITY_FILE
from serving.registry import staging
from serving.registry.agent import Agent
from serving.store import ModelStore
from tests.processes import free_port


@pytest.fixture(scope="module", autouse=True)
def agent_alias(registry):
    """The alias these tests move (the module's registry copy is theirs alone)."""
    _, client, name, original, _, _ = registry
    client.set_registered_model_alias(name, "agent", original)


def state(directory: Path, model_uri: str | None = None) -> dict:
    """What state.json says of `model_uri` (default: the only one it names)."""
    models = json.loads((directory / "state.json").read_text())["models"]
    if model_uri is None:
        (model_uri,) = models
    return models[model_uri]


def test_the_agent_stages_what_the_alias_names_and_a_worker_loads_it(registry, tmp_path):
    uri, client, name, original, good, nowhere = registry
    agent = Agent(f"models:/{name}@agent", uri, tmp_path)
    worker = ModelStore(f"models:/{name}@agent", uri, agent_dir=tmp_path)
    assert worker.poll() == "unreachable" and "waiting for the model agent" in worker.reason

    assert agent.poll() == "staged"
    agent.publish()
    published = state(tmp_path)["model"]
    assert published["version"] == original and published["resolved_uri"].endswith(original)
    assert (Path(published["path"]) / "MLmodel").is_file()
    assert (Path(published["path"]) / IDENTITY_FILE).is_file()
    assert agent.poll() == "unchanged"

    assert worker.poll() == "swapped"
    assert worker.current.info.version == original and worker.current.fast is not None

    client.set_registered_model_alias(name, "agent", good)
    assert agent.poll() == "staged"
    agent.publish()
    assert worker.poll() == "swapped" and worker.current.info.version == good

    # files the registry cannot give: published with the reason, refused by the worker
    client.set_registered_model_alias(name, "agent", nowhere)
    assert agent.poll() == "failed"
    agent.publish()
    assert state(tmp_path)["model"]["error"].startswith(f"cannot stage models:/{name}/{nowhere}")
    assert worker.poll() == "refused" and worker.current.info.version == good
    assert agent.poll() == "unchanged"  # not retried on every poll
    assert agent.poll(force=True) == "failed"  # a forced reload tries it again
    client.set_registered_model_alias(name, "agent", original)


def test_staged_versions_beyond_the_last_few_are_removed(registry, tmp_path):
    uri, _, name, original, _, _ = registry
    agent = Agent(f"models:/{name}/{original}", uri, tmp_path)
    for _ in range(staging.KEEP_STAGED + 2):
        agent.staged = None  # stage again
        assert agent.poll() == "staged"
    (area,) = (tmp_path / "models").iterdir()  # one staging directory per model URI
    assert len(list(area.iterdir())) == staging.KEEP_STAGED


def test_an_unreachable_registry_is_published_for_the_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    agent = Agent("models:/titanic@champion", f"http://127.0.0.1:{free_port()}", tmp_path)
    assert agent.poll() == "unreachable"
    agent.poll()
    agent.publish()
    registry = state(tmp_path)["registry"]
    assert registry["reachable"] is False and registry["failed_polls"] == 2
    worker = ModelStore("models:/titanic@champion", "unused", agent_dir=tmp_path)
    assert worker.poll() == "unreachable"
    assert worker.status()["registry"]["failed_polls"] == 2


def test_a_forced_reload_waits_for_the_agents_poll(registry, tmp_path):
    uri, client, name, original, good, _ = registry
    agent = Agent(f"models:/{name}@agent", uri, tmp_path, reload_interval=0)
    worker = ModelStore(f"models:/{name}@agent", uri, agent_dir=tmp_path)
    stop = threading.Event()
    loop = threading.Thread(target=agent.run, kwargs={"stop": stop}, daemon=True)
    loop.start()
    try:
        assert worker.poll(refresh=True) == "swapped"  # the agent polled because it was asked
        assert worker.current.info.version == original
        client.set_registered_model_alias(name, "agent", good)
        assert worker.poll() == "unchanged"  # no polling (interval 0): nothing staged yet
        assert worker.poll(force=True, refresh=True) == "swapped"
        assert worker.current.info.version == good
    finally:
        stop.set()
        loop.join(timeout=10)
        client.set_registered_model_alias(name, "agent", original)


def test_one_agent_stages_every_alias_and_a_missing_one_delays_no_other(registry, tmp_path):
    uri, client, name, original, good, nowhere = registry
    client.set_registered_model_alias(name, "agent-b", good)
    champion, challenger, absent = (f"models:/{name}@{a}" for a in ("agent", "agent-b", "none"))
    agent = Agent([champion, challenger, absent], uri, tmp_path, retry_seconds=0.05)
    stop = threading.Event()
    loop = threading.Thread(target=agent.run, kwargs={"stop": stop}, daemon=True)
    loop.start()
    try:
        stores = [ModelStore(u, uri, agent_dir=tmp_path) for u in (champion, challenger, absent)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(s.ensure() for s in stores[:2]):
            time.sleep(0.05)
        assert [s.current.info.version for s in stores[:2]] == [original, good]
        assert [s.current.info.alias for s in stores[:2]] == ["agent", "agent-b"]
        assert stores[2].poll() == "missing" and "no alias 'none'" in stores[2].reason
        published = json.loads((tmp_path / "state.json").read_text())["models"]
        assert set(published) == {champion, challenger, absent}
        areas = {
            Path(published[u]["model"]["path"]).relative_to(tmp_path / "models").parts[0]
            for u in (champion, challenger)
        }
        assert len(areas) == 2  # a staging directory per alias: pruning one spares the other

        # a broken challenger is refused by its own store; the champion's is untouched
        client.set_registered_model_alias(name, "agent-b", nowhere)
        assert stores[1].poll(force=True, refresh=True) == "refused"
        assert stores[1].current.info.version == good
        assert stores[0].poll() == "unchanged" and stores[0].current.info.version == original
    finally:
        stop.set()
        loop.join(timeout=10)
        client.delete_registered_model_alias(name, "agent-b")
