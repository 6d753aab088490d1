"""Statistics of results: tables, selection, the safe zone and its tests."""
