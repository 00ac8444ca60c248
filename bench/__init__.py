"""`make bench`: this server against `mlflow models serve`, MLServer, BentoML and a no-op ceiling.

`python -m bench.run` is the benchmark (its modules: servers, load, goals, report; processes is
shared with the end-to-end tests); `python -m bench.batch` times batch scoring.
"""
