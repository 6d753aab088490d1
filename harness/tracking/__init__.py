"""The MLflow mirror of the store."""
