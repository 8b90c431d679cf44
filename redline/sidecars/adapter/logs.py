"""One --access-log pattern: the tailer that follows its files and the pipeline that records
their lines."""

from __future__ import annotations

from redline.config import ConfigError
from redline.exporters.red import ServerRecorder
from redline.sidecars.adapter.config import AdapterConfig
from redline.sidecars.adapter.pipeline import LogPipeline
from redline.sidecars.adapter.tailer import Tailer


class LogSource:
    def __init__(self, pattern: str, config: AdapterConfig, recorder: ServerRecorder) -> None:
        assert config.log_format is not None
        self.pattern = pattern
        self.pipeline = LogPipeline(config.log_format, recorder, config.routes)
        self.tailer = Tailer([pattern], self._lines, from_start=config.from_start,
                             max_line=config.max_line_bytes,
                             on_dropped=self.pipeline.count_error,
                             rotate_wait=config.rotate_wait)

    def _lines(self, data: bytes) -> None:
        self.pipeline.feed(data.decode("utf-8", "replace"))

    def read_once(self) -> None:
        """Every matched file from its start to its end, then close them (`--once`, which sets
        from_start). A pattern that matches no file, or a file that cannot be read, is a config
        error here: live, the source is down until the file appears or can be read, but with
        `--once` nothing waits for that, and metrics without its lines would look complete."""
        try:
            while True:
                read = self.tailer.poll()
                problem = self.problem()
                if problem is not None:
                    raise ConfigError(f"--access-log: {problem}")
                if not read:
                    return
        finally:
            self.tailer.close()

    def up(self) -> bool:
        return self.problem() is None

    def problem(self) -> str | None:
        """Why the source is down, for /readyz; None while it is up. Up when every matched
        file can be read and at least one is followed (or, after `--once`, was)."""
        tailer = self.tailer
        if tailer.unreadable:
            return "; ".join(f"cannot read {path}: {reason}"
                             for path, reason in sorted(tailer.unreadable.items()))
        if not tailer.files and not tailer.matched:
            return f"no file matches {self.pattern}"
        return None

    def counts(self) -> dict[str, float]:
        stats = self.tailer.stats
        return {"lines": self.pipeline.lines, "parse_errors": self.pipeline.parse_errors,
                "rotations": stats.rotations, "truncations": stats.truncations,
                "read_errors": stats.read_errors,
                "dropped_long_lines": stats.dropped_long_lines}
