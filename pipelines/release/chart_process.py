"""The report's evidence charts drawn by a second Python process (`evidence_svg.main`).

Importing matplotlib and drawing the three charts took about 0.5 CPU s of a bundled build's
release step, in a thread that held the GIL beside the record history (bench/README.md, h10b);
a process of its own does both on the other core, and the build's process never imports
matplotlib. The command line starts it before it imports the build (`started_ahead`), so its
imports overlap the build's own and the release step waits only for the drawing; a report with
none started ahead starts one (`ready_process`). Standard library only: the command line loads
this before anything heavy.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pipelines import paths

Chart = tuple[str, tuple[Any, ...]]
"""A chart to draw: its name in `evidence_svg.CHARTS` and the arguments it is drawn from."""
SVG_MODULE = "pipelines.release.evidence_svg"


class ChartError(RuntimeError):
    """The chart process failed; the message is its error's last line."""


class ChartProcess:
    """`evidence_svg` in a Python process of its own, started now: by the time the charts are
    asked for (`draw`) it has imported matplotlib, and it draws them while this process waits
    without the GIL."""

    def __init__(self) -> None:
        # This process's own code, whatever the working directory holds.
        path = [str(paths.PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]
        self._child = subprocess.Popen(
            [sys.executable, "-m", SVG_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)},
        )

    def draw(self, charts: Sequence[Chart]) -> list[str]:
        """Each chart's SVG, in order; the process ends with it.

        Raises:
            ChartError: the process failed (its last line of error).
        """
        if not charts:
            return []
        out, err = self._child.communicate(pickle.dumps(list(charts)))
        if self._child.returncode != 0:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            cause = lines[-1] if lines else f"exit status {self._child.returncode}"
            raise ChartError(f"drawing the report's evidence charts failed: {cause}")
        svgs: list[str] = pickle.loads(out)
        return svgs

    def close(self) -> None:
        """End the process if it still runs (the charts were never asked for)."""
        if self._child.poll() is None:
            self._child.kill()
        self._child.communicate()


_AHEAD: list[ChartProcess] = []
"""The chart process a build started ahead of its report (`started_ahead`), if not yet taken."""


@contextmanager
def started_ahead() -> Iterator[None]:
    """Start a chart process now for the report of the build in this block: it imports
    matplotlib (about 0.4 CPU s) on the other core while the build loads, so the report's charts
    cost the release step only their drawing. Ended with the block if no report took it."""
    process = ChartProcess()
    _AHEAD.append(process)
    try:
        yield
    finally:
        if process in _AHEAD:
            _AHEAD.remove(process)
        process.close()


@contextmanager
def ready_process() -> Iterator[ChartProcess]:
    """The chart process started ahead, else a new one; ended with the block."""
    process = _AHEAD.pop() if _AHEAD else ChartProcess()
    try:
        yield process
    finally:
        process.close()
