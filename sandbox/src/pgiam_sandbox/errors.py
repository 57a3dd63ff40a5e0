"""Errors the sandbox reports as one line (the CLI prints them and exits 2)."""


class SandboxError(Exception):
    """The sandbox could not start or do what was asked; str() is a one-line, user-facing message."""
