"""The pruning benchmark harness: TRAIN, PRUNE, RETRAIN as in Renda, Frankle & Carbin (2020)."""
