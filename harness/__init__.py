"""The pruning benchmark harness: TRAIN, PRUNE, RETRAIN as in Renda, Frankle & Carbin (2020)."""

from harness.core import torchvision_compat, transformers_compat

torchvision_compat.install()
transformers_compat.install()
