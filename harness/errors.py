"""The one error type the CLI turns into a one-line message and exit code 2."""


class HarnessError(ValueError):
    """Bad input from the user: the message says what was wrong and what is valid."""
