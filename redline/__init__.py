"""redline: RED metrics for services and USE metrics for nodes."""

from redline.compiled import force_pure

__version__ = "0.1.0"

# REDLINE_PURE=1: the .py sources of the mypyc-compiled modules, even where their compiled
# extensions exist (redline/compiled.py); before any of them can be imported.
force_pure()
