"""Where model versions come from: the one layer that talks to the MLflow registry.

`staging` resolves a model URI and downloads the version it names; `health` keeps the registry's
health and the retry backoff; `protocol` is the files through which the model agent and the
workers talk; `sources` are the ways a store gets versions (MLflow here, the agent's staging, a
local directory); `agent` is the model agent process itself.
"""
