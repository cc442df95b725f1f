"""Logging for workflow scripts: one line per step, to the rule's log file and to stderr."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(log_path: str | Path | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send greensink's log records to ``log_path`` (if given) and stderr; return the script's logger."""
    root = logging.getLogger("greensink")
    root.setLevel(level)
    root.handlers.clear()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    for h in handlers:
        h.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(h)
    logging.captureWarnings(True)
    sys.excepthook = _excepthook(log_path)
    return logging.getLogger("greensink.workflow")


def _excepthook(log_path: str | Path | None) -> Callable:
    """Where a rule's script fails: an input problem (a GreensinkError) is logged as one ERROR line to the
    rule's log and the screen, without a traceback (the message names file, field, value and fix); any other
    exception is a bug: its traceback goes to the log file too, and to the screen as usual."""
    default = sys.__excepthook__

    def hook(kind, value, tb) -> None:
        from greensink.errors import GreensinkError  # here, not at import: logs stays import-light

        log = logging.getLogger("greensink.workflow")
        if isinstance(value, GreensinkError):
            where = f" (log: {log_path})" if log_path else ""
            log.error("%s%s%s", _rule_prefix(), value, where)
            raise SystemExit(1)
        if log_path:
            import traceback

            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write("".join(traceback.format_exception(kind, value, tb)))
        default(kind, value, tb)

    return hook


def _rule_prefix() -> str:
    """"rule NAME: " when running as a Snakemake rule script (whose module defines ``snakemake``), else ""."""
    import __main__

    rule = getattr(getattr(__main__, "snakemake", None), "rule", None)
    return f"rule {rule}: " if rule else ""


def progress(logger: logging.Logger, what: str, every_s: float = 10.0) -> Callable[[int, int], None]:
    """A progress callback that logs ``what: done/total`` on the first call, then at most every ``every_s`` seconds, and at the end."""
    last: list[float | None] = [None]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if last[0] is None or done == total or now - last[0] >= every_s:
            last[0] = now
            logger.info("%s: %d/%d (%.0f %%)", what, done, total, 100.0 * done / max(total, 1))

    return report
