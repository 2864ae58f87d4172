"""Subcommands of the bireid CLI, one module each (see bireid.cli); ``COMMANDS`` in the order ``--help`` lists them.

Each module keeps its heavy imports inside its functions, so importing this package (every ``bireid`` call
does) stays cheap.
"""

from . import ablate, complexity, detect, export, extract, search, synth, train
from . import eval as eval_  # the module is named after its command; ``eval_`` keeps the builtin unshadowed

COMMANDS = {"train": train, "eval": eval_, "synth": synth, "complexity": complexity, "ablate": ablate,
            "export": export, "extract": extract, "search": search,
            "detect": detect}
