"""Where the ``vbatt`` commands print: one console for results, one for errors.

Its own module so that every stage's commands (``vbatt quality``, ``vbatt quarantine``, ...)
print the same way without importing the CLI that imports them.
"""

from __future__ import annotations

import sys

from rich.console import Console

console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, soft_wrap=True)  # a file name in a message stays whole
