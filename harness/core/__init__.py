"""The bottom layer: errors, registries, declared names, the paper's protocol, hyperparameters and their
identity, schedules, masks, seeding, signals."""
