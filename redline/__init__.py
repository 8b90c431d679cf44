"""redline: RED metrics for services and USE metrics for nodes."""

from redline.compiled import install_finder

__version__ = "0.1.0"

# Before any of the mypyc-compiled modules can be imported: their .py sources load instead of
# their compiled extensions under REDLINE_PURE=1, and (with a warning) when the compiled build
# is stale, i.e. not what the sources on disk say (redline/compiled.py).
install_finder()
