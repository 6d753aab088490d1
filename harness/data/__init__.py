"""Data sets in memory and in image folders, with their loaders."""
