"""The processes of `python -m serving`: a master that loads nothing, the model agent, workers,
and under `--shadow` the shadow scorer.

- `main`: the entry point; checks the port, makes the run directory, the metrics directory and
  the reload flag, starts the agent (and the shadow scorer) and hands over to the HTTP server;
- `granian`: the HTTP server and process manager, configured from the settings;
- `worker`: what each worker builds (store, app, ASGI front, watcher);
- `agent_process`: runs and restarts the model agent (serving.registry.agent), and the
  master's other supervised child;
- `shadow_scorer`: the shadow scorer process, and the master's handle on it.
"""
