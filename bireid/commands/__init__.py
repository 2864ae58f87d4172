"""Subcommands of the bireid CLI, one module each (see bireid.cli)."""
