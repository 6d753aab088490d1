"""TRAIN, PRUNE, RETRAIN: the runner, the gate for cells, speed, export."""
