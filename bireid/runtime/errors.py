"""Exceptions of the runtime."""


class FormatError(ValueError):
    """A ``.bnn`` file is malformed, truncated, corrupted or from a newer format version."""
