"""Container tests: build the image with podman and run it against a real registry.

Tests marked `container` are slow (a base image, an image build, a training run) and need root,
podman and runc: they run only when selected with `-m container` (`make container-test`), and are
deselected from every other run, so `make test` never starts them.
"""

from __future__ import annotations

import pytest

MARKER = "container"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: builds and runs the image with podman (make container-test)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if MARKER in (config.getoption("markexpr") or ""):
        return
    deselected = [item for item in items if item.get_closest_marker(MARKER)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker(MARKER)]
