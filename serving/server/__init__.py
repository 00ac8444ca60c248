"""The processes of `python -m serving`: a master that loads nothing, the model agent, workers.

- `main`: the entry point; makes the run directory, the metrics directory and the reload flag,
  starts the agent and hands over to the process manager;
- `agent_process`: runs and restarts the model agent (serving.registry.agent);
- `gunicorn`: the process manager's configuration and the worker's life (load, watch, exit).
"""
