"""Staging rows for the register import: records as staging values or COPY text, and the parser thread.

The parser thread (``Spooler``) turns each kind's records into PostgreSQL COPY text in a temporary file
while the database works on the previous kind; ``staged`` yields rows for SQLite's ``executemany``.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from idp.core.register.records import Kind, Link, Parsed, Representative, RowError, School, Student, digest
from idp.storage.register_sql import SEEN_KEY, WIDTH

#: Errors kept for display; the report still counts all of them.
SHOWN_ERRORS = 100
_SPOOL_BATCH = 4096


def _values(record: School | Student | Representative | Link) -> tuple[Any, ...]:
    """A record as a staging row: line, values, fingerprint (not for schools), ``ok``."""
    if type(record) is School:
        return (record.line, *record.values(), True)
    values = record.values()
    return (record.line, *values, digest("\t".join(values)), True)


def _copy_text(record: School | Student | Representative | Link) -> str:
    """A record as one line of PostgreSQL COPY text (readers refuse tabs and newlines, backslashes are escaped).

    The fingerprint is the digest of the tab-joined values, the very text staged (before escaping).
    """
    body = "\t".join(record.values())
    tail = "t" if type(record) is School else f"{digest(body)}\tt"
    if "\\" in body:
        body = body.replace("\\", "\\\\")
    return f"{record.line}\t{body}\t{tail}"


def _reject_values(kind: Kind, error: RowError) -> tuple[Any, ...]:
    """The staging row remembering a rejected row's key (``ok`` false, the rest NULL)."""
    width = WIDTH[kind]
    return ((error.line, *error.key) + (None,) * width)[:width - 1] + (False,)


def _reject_text(kind: Kind, error: RowError) -> str:
    """``_reject_values`` as COPY text."""
    return "\t".join("\\N" if v is None else "f" if v is False else str(v).replace("\\", "\\\\")
                     for v in _reject_values(kind, error))


@dataclass
class Tally:
    """Row errors of one kind, counted (and the first ones kept) while its rows are staged."""

    errors: list[RowError] = field(default_factory=list)
    total: int = 0
    rejects_kept: int = 0

    def error(self, kind: Kind, item: RowError, keep_rejects: bool) -> bool:
        """Count a row error; tell whether its key must be staged (to be remembered as seen)."""
        self.total += 1
        if len(self.errors) < SHOWN_ERRORS or item.fatal:
            self.errors.append(item)
        if keep_rejects and item.key and kind in SEEN_KEY:
            self.rejects_kept += 1
            return True
        return False


def staged(kind: Kind, source: Iterable[Parsed], tally: Tally, keep_rejects: bool) -> Iterator[tuple[Any, ...]]:
    for item in source:
        if type(item) is not RowError:
            yield _values(item)  # type: ignore[arg-type]
        elif tally.error(kind, item, keep_rejects):
            yield _reject_values(kind, item)


def _spooled(kind: Kind, source: Iterable[Parsed], tally: Tally, keep_rejects: bool) -> Iterator[str]:
    for item in source:
        if type(item) is not RowError:
            yield _copy_text(item)  # type: ignore[arg-type]
        elif tally.error(kind, item, keep_rejects):
            yield _reject_text(kind, item)


class Spooler(threading.Thread):
    """Parses the sources, in order, into COPY-text temporary files while the database works."""

    def __init__(self, sources: list[tuple[Kind, Iterable[Parsed]]], keep_rejects: bool) -> None:
        super().__init__(name="register-parser", daemon=True)
        self.sources, self.keep_rejects = sources, keep_rejects
        self.ready = {kind: threading.Event() for kind, _ in sources}
        self.spools: dict[Kind, tuple[IO[bytes], Tally]] = {}
        self.failure: BaseException | None = None
        self.stopped = False

    def run(self) -> None:
        """Spool every source; a failure is kept for ``take`` to raise in the importing thread."""
        try:
            for kind, source in self.sources:
                if self.stopped:
                    return
                self.spools[kind] = self._spool(kind, source)
                self.ready[kind].set()
        except BaseException as exc:  # noqa: BLE001 - handed to the importing thread, which raises it
            self.failure = exc
        finally:
            for event in self.ready.values():
                event.set()

    def _spool(self, kind: Kind, source: Iterable[Parsed]) -> tuple[IO[bytes], Tally]:
        spool, tally = tempfile.TemporaryFile(), Tally()  # noqa: SIM115 - closed by the importing thread
        batch: list[str] = []
        for line in _spooled(kind, source, tally, self.keep_rejects):
            batch.append(line)
            if len(batch) >= _SPOOL_BATCH:
                batch.append("")
                spool.write("\n".join(batch).encode())
                batch.clear()
                if self.stopped:
                    break
        if batch:
            batch.append("")
            spool.write("\n".join(batch).encode())
        spool.seek(0)
        return spool, tally

    def take(self, kind: Kind) -> tuple[IO[bytes], Tally]:
        """Wait until ``kind`` is spooled and hand over its file."""
        self.ready[kind].wait()
        if self.failure is not None:
            raise self.failure
        return self.spools.pop(kind)

    def stop(self) -> None:
        """Ask the parser to stop and close what it spooled."""
        self.stopped = True
        self.join()
        for spool, _tally in self.spools.values():
            spool.close()
