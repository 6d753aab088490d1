"""Optuna searches over a method's declared space."""
