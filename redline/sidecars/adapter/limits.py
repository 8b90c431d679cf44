"""Every bound the adapter keeps against what it reads, in one place: its default and why.
Each has a flag (command.py), a counter when it is hit (self_metrics.py), and a line in
docs/adapter.md's "Limits"."""

from __future__ import annotations

# --max-line-bytes. Longer lines are dropped unread, never buffered whole: access log lines
# are hundreds of bytes; a quarter MiB leaves room for huge query strings and cookies.
MAX_LINE = 256 * 1024
MIN_LINE_BYTES = 1024  # below this, ordinary access log lines would be dropped

# --max-body-bytes. An app's stats or metrics page is kilobytes, rarely a megabyte; the body is
# held whole while it is parsed, so this also bounds the adapter's memory per fetch.
MAX_BODY_BYTES = 8 * 1024 * 1024

# --max-series-per-rule. Labels filled from the source (`$1` of a statsd name, a JSON key) make
# a series per distinct value; a thousand is more than any real label of a metric has.
MAX_SERIES_PER_RULE = 1000

# Not a flag: a statsd sample rate below this counts as this. `@0.00000001` would make one
# packet 10^8 requests; clients sample at 0.1 or 0.01, and 0.001 already makes one packet a
# thousand requests.
MIN_SAMPLE_RATE = 0.001
