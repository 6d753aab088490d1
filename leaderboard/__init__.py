"""Tables, plots and the leaderboard page (built on the statistics in harness/)."""
