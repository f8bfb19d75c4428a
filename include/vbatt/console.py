"""Where the ``vbatt`` commands print: one console for results, one for errors.

Its own module so that every stage's commands (``vbatt quality``, ``vbatt quarantine``, ...)
print the same way without importing the CLI that imports them.
"""

from __future__ import annotations

import sys

from rich.console import Console

_TERMINAL = sys.stdout.isatty()
# On a terminal lines wrap at its width. Piped into a log or grep, a line stays whole (a
# count split from its noun helped no one) and tables are drawn 140 wide. Log lines carry
# their time, not the source line that printed them: that says nothing to a user.
console = Console(width=None if _TERMINAL else 140, soft_wrap=not _TERMINAL, log_path=False)
err = Console(stderr=True, soft_wrap=True)  # a file name in a message stays whole
