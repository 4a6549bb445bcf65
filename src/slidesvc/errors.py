"""The errors slidesvc reports to its users.

Every problem a user can fix is one of these, printed as
``file:line: message`` without a traceback. Third-party exceptions are
converted at the boundary where they happen.

    SlidesvcError               root; exit code 1 on the command line
    ├── DeckError               a deck's source is wrong (carries path + line)
    │   └── DeckTooLarge        over the configured size limit
    ├── ThemeError              a theme file is missing or unreadable
    ├── RenderError             rendering failed (PDF worker crashed, timed out, ...)
    ├── ServeError              the service cannot start (port in use, bad origin, ...)
    ├── PublishError            the publisher cannot start or manage a deck
    └── ImageBuildError         the container image cannot be built or pushed
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a deck, tied to a source line."""

    path: Path
    """The deck (or theme, or image) file the finding is about."""
    line: int
    """1-based source line; 0 when the finding is about the whole file."""
    message: str
    """What is wrong and what to do about it."""
    severity: Severity = "warning"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {prefix}{self.message}"


class SlidesvcError(Exception):
    """Root of every error slidesvc reports to a user."""


class DeckError(SlidesvcError):
    """A deck's source is wrong; knows the file and the 1-based line."""

    def __init__(
        self,
        path: Path | str,
        line: int,
        message: str,
        *,
        others: tuple[Diagnostic, ...] = (),
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        self.others = others
        """Further errors and warnings found in the same pass, for `check`."""
        super().__init__(str(self.diagnostic))

    @property
    def diagnostic(self) -> Diagnostic:
        return Diagnostic(self.path, self.line, self.message, "error")


class DeckTooLarge(DeckError):
    """The deck file is bigger than the configured limit."""


class ThemeError(SlidesvcError):
    """A theme cannot be found or read."""


class RenderError(SlidesvcError):
    """Rendering an artifact failed (PDF worker crash, time or memory limit)."""


class ServeError(SlidesvcError):
    """The per-deck service cannot start (bad origin, port in use, bad artifacts)."""


class PublishError(SlidesvcError):
    """The publisher cannot start or manage its deck processes."""


class ImageBuildError(SlidesvcError):
    """A container image cannot be assembled, written or pushed."""
