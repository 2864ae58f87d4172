"""The error class of mistakes the user can fix from the command line (the CLI prints it without a traceback).

The other user-facing errors live beside the code that raises them (``ConfigError``, ``DatasetError``,
``CheckpointError``, ``FormatError``, ``ExportError``, ``ImageError``); ``bireid.cli`` lists them all.
"""


class UserError(Exception):
    """An error caused by input the user controls (paths, options, files); printed without a traceback."""
