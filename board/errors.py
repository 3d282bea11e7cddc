"""Domain errors: what the services raise when something cannot be done. They know
nothing of HTTP; the web layer (board.app) answers each with its status and the
friendly error page in the visitor's language."""

from __future__ import annotations


class DomainError(Exception):
    status = 400

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or type(self).__name__)
        self.message = message  # translated, for the error page; None: the status says it


class NotFound(DomainError):
    """Also what a private thing looks like to whoever may not see it: nobody learns
    that it exists."""

    status = 404


class NotAllowed(DomainError):
    status = 403


class TooSoon(DomainError):
    """The flood rule: the same writer wrote less than its interval ago."""

    status = 429

    def __init__(self, seconds: int, message: str | None = None) -> None:
        super().__init__(message)
        self.seconds = seconds


class Invalid(DomainError):
    """Input a form should have refused; `errors` maps the form's fields to messages."""

    status = 400

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(next(iter(errors.values()), None))
        self.errors = errors
