"""Raw Titanic CSVs -> validated splits -> fitted pipeline -> metrics -> MLflow registry."""
