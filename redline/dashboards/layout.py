"""Panel placement on Grafana's 24-column grid: rows fill left to right and wrap, so panels
never overlap and a full row is exactly 24 columns wide."""

from __future__ import annotations

from typing import Any

from grafanalib.core import GridPos, RowPanel

GRID_WIDTH = 24


class Layout:
    def __init__(self) -> None:
        self.panels: list[Any] = []
        self._x = 0
        self._y = 0
        self._row_height = 0

    def row(self, title: str) -> Layout:
        """A collapsible section header across the whole width."""
        self._newline()
        self.panels.append(RowPanel(title=title, gridPos=GridPos(h=1, w=GRID_WIDTH, x=0,
                                                                  y=self._y)))
        self._y += 1
        return self

    def add(self, panel: Any, width: int, height: int) -> Layout:
        if not 0 < width <= GRID_WIDTH:
            raise ValueError(f"panel width must be 1 to {GRID_WIDTH}, got {width}")
        if self._x + width > GRID_WIDTH:
            self._newline()
        panel.gridPos = GridPos(h=height, w=width, x=self._x, y=self._y)
        self.panels.append(panel)
        self._x += width
        self._row_height = max(self._row_height, height)
        return self

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_height
        self._x = 0
        self._row_height = 0
