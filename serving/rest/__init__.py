"""The HTTP API (Flask and WSGI only): the app factory and everything a request meets.

`create_app(settings, store)` wires it: the prediction endpoints (`predict`, `invocations`), the
probes (`probes`), operations (`admin`, `docs`, `openapi`), the hooks that give every answer its
headers, access-log line and metrics (`hooks`), the error answers (`errors`), the request time
limit (`limits`), and `predict_lane`, which answers POST /predict's common case below Flask.
"""
