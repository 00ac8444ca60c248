"""Operator endpoints: `POST /admin/reload` (re-resolve the alias, load, check and swap now).

Disabled (404) unless the server's environment sets `SERVING_ADMIN_TOKEN`; a request must then
carry `Authorization: Bearer <token>` (missing: 401, wrong: 403). The token is compared with
`hmac.compare_digest`, read from the environment only (never a flag, so `ps` does not show it)
and never logged: the request log records method, path and status, not headers.

A request reaches one worker, which reloads every served alias at once and answers with the
outcome (the default's, and each alias's under `models`); it also
touches the shared reload flag, and every other worker reloads within a fraction of a second
(see `serving.watcher`). A forced reload also retries a version refused before.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

from flask import Blueprint, Response, request

from serving.rest.errors import error_response, json_response
from serving.rundir import ReloadFlag
from serving.store import ModelStore
from serving.stores import Stores, as_stores

TOKEN_ENV = "SERVING_ADMIN_TOKEN"


def admin_blueprint(
    stores: ModelStore | Stores,
    flag: ReloadFlag | None = None,
    environ: Mapping[str, str] | None = None,
) -> Blueprint:
    environ = os.environ if environ is None else environ
    stores = as_stores(stores)
    token = environ.get(TOKEN_ENV, "").encode()
    admin = Blueprint("admin", __name__, url_prefix="/admin")

    @admin.post("/reload")
    def reload() -> Response:
        if not token:
            return error_response(
                "admin_disabled",
                f"admin endpoints are disabled: the server was started without {TOKEN_ENV}",
                404,
            )
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not sent.strip():
            return error_response(
                "unauthorized",
                "send the admin token as 'Authorization: Bearer <token>'",
                401,
                {"WWW-Authenticate": 'Bearer realm="serving-admin"'},
            )
        if not hmac.compare_digest(sent.strip().encode(), token):
            return error_response("forbidden", "the admin token is not valid", 403)
        results = stores.reload()
        store = stores.default
        result = results[store.model_uri]
        if flag is not None:
            flag.touch()  # the other workers reload within a tick
        current = store.current
        status = store.status()
        answer = {
            "result": result,
            "version": current.info.version if current is not None else None,
            "refused": status["refused"] if result == "refused" else None,
            "registry": status["registry"],
            "models": {uri: outcome for uri, outcome in results.items()},
            "other_workers": "signalled"
            if flag is not None
            else "not signalled (no shared reload flag in this server)",
        }
        status_code = {"unreachable": 503, "refused": 422}.get(result, 200)
        return json_response(answer, status_code)

    return admin
