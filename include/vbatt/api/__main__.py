"""``python -m vbatt.api --host H --port P``: the API in the foreground (what `vbatt serve` runs)."""

from vbatt.api.server import main

if __name__ == "__main__":
    main()
