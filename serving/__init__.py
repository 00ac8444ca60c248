"""Serve the registered Titanic model: `python -m serving` (the server), or
`serving.rest.app.create_app()` for the WSGI app alone.

Nothing happens at import. The layers, top down (`make lint` checks that imports only go down):
`server` (the processes), `rest` and `batch` (the ways in), `watcher` and `store` (which version
is served, and when it changes), `registry` (where versions come from), `model` (one version
from its directory), and the leaves every layer may use (`config`, `contract`, `deadline`,
`metrics`, `request_log`, `tempdirs`, `errors`).
"""
