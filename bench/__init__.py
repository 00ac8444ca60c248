"""`make bench`: this server against `mlflow models serve`, same model, same load, one table."""
