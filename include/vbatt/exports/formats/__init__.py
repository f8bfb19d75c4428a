"""One module per file format; each exposes ``render(batch, options, ctx)``."""
