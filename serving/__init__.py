"""Serve the registered Titanic model: `python -m serving` (gunicorn) or `create_app()` (Flask).

Nothing happens at import: the model loads when `create_app` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from serving.config import Settings
    from serving.model_store import ModelStore


def create_app(settings: Settings | None = None, model_store: ModelStore | None = None) -> Flask:
    """See serving.app.create_app (imported lazily: importing `serving` stays cheap)."""
    from serving.app import create_app as factory

    return factory(settings, model_store)


__all__: list[Any] = ["create_app"]
