"""The ``bireid`` command. Each subcommand is a module in ``bireid.commands`` (listed in its ``COMMANDS``)
exposing ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``; errors the user can fix print
one clear line, not a traceback."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .commands import COMMANDS
from .errors import UserError

__all__ = ["UserError", "build_parser", "main"]


def _user_error_types() -> tuple[type[BaseException], ...]:
    # Imported here, when an error is being reported, so that starting the CLI stays cheap.
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data import BadImageError, DatasetError
    from .deploy import ImageError
    from .deploy.export import ExportError
    from .runtime import FormatError

    return (UserError, ConfigError, DatasetError, BadImageError, CheckpointError, FormatError, ExportError,
            ImageError, FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bireid", description="1-bit neural networks for person re-ID.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"bireid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in COMMANDS.items():
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter
                           if getattr(mod, "SHOW_DEFAULTS", False) else argparse.HelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    prefix = f"bireid {args.command}"
    with warnings.catch_warnings():
        # Warnings meant for the user (e.g. "skipped 3 unreadable images") print as one line, not with the
        # source location and code line Python shows by default.
        warnings.showwarning = _warning_printer(prefix)
        try:
            return int(args._run(args) or 0)
        except KeyboardInterrupt:
            print("bireid: interrupted", file=sys.stderr)
            return 130
        except (*_user_error_types(), OSError) as e:
            # OSError: disk full, read-only file system, a path through a file...: the environment, not a bug.
            print(f"{prefix}: error: {_os_error_text(e) if isinstance(e, OSError) else e}", file=sys.stderr)
            return 2


def _os_error_text(e: OSError) -> str:
    """``strerror: path`` for an OSError (its own message when it carries no errno)."""
    if not e.strerror:
        return str(e)
    where = f": {e.filename}" if e.filename is not None else ""
    if e.filename2 is not None:
        where += f" -> {e.filename2}"
    return f"{e.strerror}{where}"


def _warning_printer(prefix: str):
    package_dir = str(Path(__file__).resolve().parent)

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        origin = "" if str(filename).startswith(package_dir) else f" ({category.__name__} at {filename}:{lineno})"
        try:
            print(f"{prefix}: warning: {message}{origin}", file=file or sys.stderr)
        except OSError:
            pass  # stderr gone (closed pipe): a warning must not kill the run

    return show


if __name__ == "__main__":
    sys.exit(main())
