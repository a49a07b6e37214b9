"""Progress of a long command, the same way everywhere: a tqdm bar that redraws in place on a terminal, one plain line
per step when the output is piped or captured (a log file must not fill with carriage returns), nothing at all with
`-v 0`. At `-v 2` a terminal also keeps each step's note above the bar.

    with progress(total=len(seasons), desc="import_atp", stream=self.stdout, verbosity=verbosity) as bar:
        for season in seasons:
            ...
            bar.update(1, note=f"season {season}: 2,611 rows")

Services take a plain `Callable[[str], None]`; the command wraps `bar.update` in it, so nothing below the commands
knows how progress is drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from io import TextIOBase
from typing import IO, Protocol, cast

from tqdm import tqdm


class Progress(Protocol):
    def update(self, n: int = 1, note: str = "") -> None:
        """`n` more steps done; `note` says what the last one was (shown beside the bar, or as the piped line)."""


class _Silent:
    def update(self, n: int = 1, note: str = "") -> None:
        pass


class _Lines:
    """Not a terminal: one self-contained line per update, flushed, so `| tee log` shows progress as it happens."""

    def __init__(self, stream: IO[str], total: int | None, desc: str) -> None:
        self.stream, self.total, self.desc, self.done = stream, total, desc, 0

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        count = f"{self.done:,}/{self.total:,}" if self.total is not None else f"{self.done:,}"
        self.stream.write(f"{self.desc}: {count}" + (f"  {note}" if note else "") + "\n")
        self.stream.flush()


class _Bar:
    def __init__(self, bar: tqdm, verbose: bool) -> None:
        self.bar, self.verbose = bar, verbose

    def update(self, n: int = 1, note: str = "") -> None:
        if note:
            if self.verbose:
                self.bar.write(note, file=self.bar.fp)  # printed above the bar, which redraws below it
            else:
                self.bar.set_postfix_str(note, refresh=False)
        self.bar.update(n)


def _raw(stream: IO[str] | TextIOBase) -> IO[str]:
    # Django's OutputWrapper (a command's self.stdout) appends a newline to every write, which would turn each
    # redraw of the bar into a new line: draw on the stream it wraps.
    return cast(IO[str], getattr(stream, "_out", stream))


@contextmanager
def progress(total: int | None, desc: str, stream: IO[str] | TextIOBase, verbosity: int) -> Iterator[Progress]:
    """A progress display for `total` steps (None: unknown) on `stream`, chosen by verbosity and whether `stream` is
    a terminal."""
    if verbosity <= 0:
        yield _Silent()
        return
    raw = _raw(stream)
    if not (hasattr(raw, "isatty") and raw.isatty()):
        yield _Lines(raw, total, desc)
        return
    with tqdm(total=total, desc=desc, file=raw, dynamic_ncols=True, leave=True) as bar:
        yield _Bar(bar, verbose=verbosity >= 2)
