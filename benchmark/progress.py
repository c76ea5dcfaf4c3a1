"""Progress of long steps: a tqdm bar with an ETA on a terminal, one plain line per unit in a batch log.

A bar redraws itself with carriage returns; a batch-job log (stderr redirected to a file) keeps those
as one ever-growing line. So :func:`progress_bar` draws the bar only when its stream is a terminal and
otherwise returns a :class:`LineProgress`, which writes one line per finished unit (a batch of images,
a shard, a submission) with the count, the elapsed time and the ETA. ``enabled=False`` shows neither
(tests, ``--no-progress``). The harness's benchmark runs follow the same rule through
``RunContext.progress`` (bars on a terminal, one result line per unit always)."""

from __future__ import annotations

import contextlib
import importlib
import sys
import time


def is_terminal(stream=None) -> bool:
    """Whether ``stream`` (default: stderr, where progress goes) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def format_duration(seconds: float) -> str:
    """``M:SS`` or ``H:MM:SS`` (the way tqdm prints times)."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LineProgress:
    """The batch-log stand-in for a tqdm bar (same ``update`` / ``set_postfix`` / ``write`` / ``close``
    calls): each ``update`` writes one line, or at most one per ``every`` seconds (for callers whose
    updates are small), and the update that reaches ``total`` always writes its line."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "item",
        *,
        every: float = 0.0,
        initial: int = 0,
        stream=None,
        clock=time.monotonic,
    ):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.n = self.start = initial
        self.stream = stream
        self.clock = clock
        self.t0 = self.last_line = clock()
        self.postfix: dict[str, object] = {}
        self.lines = 0

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        finished = self.total is not None and self.n >= self.total
        if finished or self.every <= 0 or now - self.last_line >= self.every:
            self.write(self.line(now))
            self.last_line = now
            self.lines += 1

    def line(self, now: float | None = None) -> str:
        elapsed = (self.clock() if now is None else now) - self.t0
        done = self.n - self.start
        text = f"{self.desc}: {self.n}"
        if self.total:
            text += f"/{self.total} {self.unit} ({100 * self.n / self.total:.0f}%)"
        else:
            text += f" {self.unit}"
        text += f", {format_duration(elapsed)} elapsed"
        if self.total and done > 0 and self.n < self.total:
            text += f", ETA {format_duration(elapsed / done * max(self.total - self.n, 0))}"
        if self.postfix:
            text += ", " + ", ".join(f"{k}={v}" for k, v in self.postfix.items())
        return text

    def set_postfix(self, **values) -> None:
        self.postfix = dict(values)

    def write(self, text: str) -> None:
        print(text, file=self.stream if self.stream is not None else sys.stderr, flush=True)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(
    total: int | None,
    desc: str,
    unit: str = "item",
    *,
    enabled: bool = True,
    every: float = 0.0,
    initial: int = 0,
    stream=None,
    **tqdm_options,
):
    """A tqdm bar on a terminal, a :class:`LineProgress` in a batch log, a silent bar when not ``enabled``."""
    from tqdm.auto import tqdm

    if enabled and not is_terminal(stream):
        return LineProgress(total, desc, unit, every=every, initial=initial, stream=stream)
    options = {"dynamic_ncols": True, "smoothing": 0.05, **tqdm_options}
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=stream, disable=not enabled, **options)


@contextlib.contextmanager
def library_bars_off():
    """Hugging Face's own bars (transformers' and diffusers' ``logging.tqdm``, e.g. the "Writing model
    shards" bar of ``save_pretrained``) off inside the block; each library's previous setting is restored.
    Only libraries already imported are touched (the caller has imported the one it uses)."""
    switches = []
    for name in ("transformers", "diffusers"):
        if name not in sys.modules:
            continue
        logging = importlib.import_module(f"{name}.utils.logging")
        switches.append((logging, logging.is_progress_bar_enabled()))
        logging.disable_progress_bar()
    try:
        yield
    finally:
        for logging, was_enabled in switches:
            if was_enabled:
                logging.enable_progress_bar()


__all__ = ["LineProgress", "format_duration", "is_terminal", "library_bars_off", "progress_bar"]
