"""`make bench`: this server against the gunicorn front it had before, the front matrix (each
HTTP server it could run on, with a no-op app and with its app), `mlflow models serve`, MLServer
and BentoML.

`python -m bench.run` is the benchmark (its modules: servers and fronts, what runs; load, the
cases and wrk; stall and slow, the slow-client case; lane_cost, the lane with no HTTP; goals,
peer_goals, own_goals and verdict, what it is judged by; report and chart, what it writes;
noop_app, the no-op apps); processes is shared with the end-to-end tests; `python -m
bench.batch` times batch scoring.
"""
