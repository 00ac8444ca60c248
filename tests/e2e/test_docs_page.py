"""/docs renders in a real headless Chromium, offline: Swagger UI's assets come from our server.

Chromium (Debian's `chromium` package) runs with every non-local host name unresolvable, so a
page that needed a CDN would render nothing; it dumps the DOM after a virtual-time budget long
enough for Swagger UI to fetch /openapi.json and draw the operations.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.slow

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # offline but for our server
    "--virtual-time-budget=15000",
]


@pytest.fixture(scope="module")
def server(serve, registered_model):
    with serve(registered_model.tracking_uri, workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium")
    return path


def rendered_dom(chromium: str, url: str, profile) -> str:
    command = [chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_docs_page_renders_every_operation_offline(server, chromium, tmp_path):
    dom = rendered_dom(chromium, server.url + "/docs", tmp_path / "profile")
    assert 'id="swagger-ui"' in dom
    for path in (
        "/predict",
        "/invocations",
        "/health",
        "/ready",
        "/version",
        "/metrics",
        "/admin/reload",
    ):
        assert f'data-path="{path}"' in dom, f"{path} not rendered"
    assert "Predict survival for a batch of passengers" in dom  # /predict's summary
    assert "Titanic survival prediction API" in dom  # the document's title, drawn by the UI

    # The page's script, stylesheet and document all came from this server.
    served = [
        json.loads(line)
        for line in server.log.read_text().splitlines()
        if line.startswith("{") and '"serving.access"' in line
    ]
    fetched = {(entry["path"], entry["status"]) for entry in served}
    for path in (
        "/docs",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/openapi.json",
    ):
        assert (path, 200) in fetched, f"{path} was not fetched from our server"
