"""The command line: it parses, calls harness.api, and displays."""
