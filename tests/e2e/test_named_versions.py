"""Named versions on one server (--serve-aliases champion,challenger), over HTTP against the
real server: each alias's version answers when asked for (?alias=, X-Model-Alias, a V2 version
path), and moving either alias swaps only that one, under load, with no failed request."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest
import requests
from mlflow import MlflowClient

from tests.conftest import CONTRACT_REQUEST
from tests.e2e.test_reliability import Registry, copy_registry

pytestmark = pytest.mark.slow

INTERVAL = 1  # --reload-interval (seconds)
BODY = CONTRACT_REQUEST.read_bytes()
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Versions:
    registry: Registry
    champion: str
    challenger: str
    third: str  # a third version of the same logged model, where the aliases move

    def move(self, alias: str, version: str) -> float:
        client = MlflowClient(tracking_uri=self.registry.uri)
        client.set_registered_model_alias(self.registry.name, alias, version)
        return time.monotonic()


@pytest.fixture(scope="module")
def versions(registered_model, tmp_path_factory) -> Versions:
    registry = copy_registry(registered_model, tmp_path_factory.mktemp("aliases-registry"))
    client = MlflowClient(tracking_uri=registry.uri)
    source = client.get_model_version_download_uri(registry.name, registry.original)
    third = str(client.create_model_version(registry.name, source, run_id=None).version)
    client.set_registered_model_alias(registry.name, "challenger", registry.good)
    return Versions(registry, registry.original, registry.good, third)


@pytest.fixture(scope="module")
def server(serve, versions):
    with serve(versions.registry.uri, serve_aliases="champion,challenger",
               reload_interval=INTERVAL) as server:  # fmt: skip
        yield server


def version_of(url: str, alias: str | None = None, header: bool = False) -> str:
    if header:
        answer = requests.post(url + "/predict", data=BODY, timeout=10,
                               headers={**JSON, "X-Model-Alias": alias or ""})  # fmt: skip
    else:
        query = f"?alias={alias}" if alias else ""
        answer = requests.post(url + "/predict" + query, data=BODY, headers=JSON, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == answer.headers["X-Model-Version"]
    return answer.headers["X-Model-Version"]


def wait_serving(url: str, alias: str, version: str, timeout: float = 60) -> None:
    """Until 8 answers in a row for `alias` (so: every worker) come from `version`."""
    started, streak = time.monotonic(), 0
    while time.monotonic() - started < timeout:
        streak = streak + 1 if version_of(url, alias, header=True) == version else 0
        if streak >= 8:
            return
        time.sleep(0.05)
    raise AssertionError(f"{alias} is not on version {version} in every worker")


def test_each_alias_answers_with_its_own_version(server, versions):
    url = server.url
    wait_serving(url, "challenger", versions.challenger)
    assert version_of(url) == versions.champion
    assert version_of(url, "champion") == versions.champion
    assert version_of(url, "challenger") == versions.challenger
    assert version_of(url, "challenger", header=True) == versions.challenger
    unknown = requests.post(url + "/predict?alias=canary", data=BODY, headers=JSON, timeout=10)
    assert unknown.status_code == 404 and "'challenger'" in unknown.json()["error"]["message"]
    served = requests.get(url + "/version", timeout=10).json()["models"]
    assert {m["alias"]: m["version"] for m in served} == {
        "champion": versions.champion,
        "challenger": versions.challenger,
    }
    metadata = requests.get(url + "/v2/models/titanic", timeout=10).json()
    assert metadata["versions"] == [versions.champion, versions.challenger]
    assert metadata["parameters"]["aliases"] == {
        "champion": versions.champion,
        "challenger": versions.challenger,
    }
    path = f"/v2/models/titanic/versions/{versions.challenger}"
    assert requests.get(url + path, timeout=10).json()["versions"][0] == versions.challenger


@dataclass
class AliasLoad:
    """Threads POSTing /predict back to back, half for each alias (X-Model-Alias)."""

    url: str
    per_alias: int = 3
    results: list[tuple[float, str, str, str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _client(self, alias: str) -> None:
        session = requests.Session()
        headers = {**JSON, "X-Model-Alias": alias}
        while not self._stop.is_set():
            try:
                answer = session.post(self.url + "/predict", data=BODY, headers=headers,
                                      timeout=30)  # fmt: skip
                status, version = str(answer.status_code), answer.headers.get("X-Model-Version")
            except requests.RequestException as exc:
                status, version = type(exc).__name__, None
            self.results.append((time.monotonic(), alias, status, version))

    def __enter__(self) -> AliasLoad:
        for alias in ("champion", "challenger") * self.per_alias:
            thread = threading.Thread(target=self._client, args=(alias,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def seen(self, alias: str, after: float = 0.0, before: float = float("inf")) -> set:
        return {v for t, a, _, v in self.results if a == alias and after < t < before}


def test_moving_either_alias_swaps_only_that_one_under_load(server, versions):
    url = server.url
    wait_serving(url, "challenger", versions.challenger)
    with AliasLoad(url) as load:
        time.sleep(2)
        moved_challenger = versions.move("challenger", versions.third)
        wait_serving(url, "challenger", versions.third)
        switched_challenger = time.monotonic()
        time.sleep(2)
        moved_champion = versions.move("champion", versions.challenger)
        wait_serving(url, "champion", versions.challenger)
        switched_champion = time.monotonic()
        time.sleep(2)
    failures = [r for r in load.results if r[2] != "200"]
    assert failures == [], f"{len(failures)} of {len(load.results)} requests failed"
    # the challenger's move never touched the champion, and the champion's not the challenger
    assert load.seen("champion", before=moved_champion) == {versions.champion}
    assert load.seen("challenger", after=switched_challenger) == {versions.third}
    assert load.seen("champion", after=switched_champion) == {versions.challenger}
    assert load.seen("challenger", before=moved_challenger) == {versions.challenger}
    print(f"\nnamed versions: {len(load.results)} requests with 6 connections, 0 failed; "
          f"challenger swapped in {switched_challenger - moved_challenger:.2f} s, champion in "
          f"{switched_champion - moved_champion:.2f} s")  # fmt: skip
