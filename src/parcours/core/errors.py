"""The one exception hierarchy of Parcours.

Services raise these; `parcours.core.http` turns each into an RFC 9457
`application/problem+json` response in one place, and the CLI prints its message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One bad value: a JSON Pointer into the body (`#/items/0/sku`) or a parameter name.
    `message` and `values`, when given (see `refusal`), say `detail` as a msgid and its
    values, so that the console can say it in the reader's language."""

    detail: str
    pointer: str | None = None
    parameter: str | None = None
    message: str = ""
    values: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, str]:
        out = {"detail": self.detail}
        if self.pointer is not None:
            out["pointer"] = self.pointer
        if self.parameter is not None:
            out["parameter"] = self.parameter
        return out


class Term(str):
    """Words of the product's own vocabulary (statuses, fulfilment modes, weekdays) given
    as a value of a said error: the English `detail` shows them as they are, and the
    console says each word in the reader's language (`web.console.said`). Several words
    are shown joined with commas."""

    words: tuple[str, ...]

    def __new__(cls, *words: str) -> Term:
        term = super().__new__(cls, ", ".join(words))
        term.words = words
        return term


def _shown(values: Mapping[str, Any]) -> dict[str, str]:
    """Values as text for `message % values`; a Term stays one."""
    return {name: v if isinstance(v, Term) else str(v) for name, v in values.items()}


def _filled(message: str, shown: Mapping[str, str]) -> str:
    """The English text of `message` with its values (a message without values may hold
    a literal %)."""
    return message % shown if shown else message


# The field refusal every context's checks share, for a value outside a fixed list.
ONE_OF = "must be one of %(choices)s"


def refusal(
    message: str, *, pointer: str | None = None, parameter: str | None = None, **values: Any
) -> FieldError:
    """A FieldError whose `detail` is `message % values` (English), the message and
    values kept for the console's translation."""
    shown = _shown(values)
    return FieldError(_filled(message, shown), pointer, parameter, message, shown)


class ParcoursError(Exception):
    """Base of every error a caller can act on; `detail` is written for a person."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """The problem details object (RFC 9457 §3)."""
        return problem_body(
            self.status, self.slug, self.title, self.detail, instance, self.extensions
        )


def problem_body(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str | None = None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A problem details object; `slug` names the problem type."""
    body: dict[str, Any] = {
        "type": f"urn:parcours:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions or {})
    return body


class MalformedRequest(ParcoursError):
    status, slug, title = 400, "malformed-request", "Malformed request"


class InvalidInput(ParcoursError):
    """Input parsed but broke a rule; `errors` points at each bad field."""

    status, slug, title = 422, "invalid-input", "Invalid input"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []
        if self.errors:
            self.extensions["errors"] = [e.as_dict() for e in self.errors]


class Refused(InvalidInput):
    """InvalidInput whose headline is also kept as `message % values` (the English
    `detail` may say more), so that the console can say it in the reader's language."""

    def __init__(
        self,
        detail: str,
        errors: list[FieldError] | None = None,
        message: str = "",
        **values: Any,
    ) -> None:
        super().__init__(detail, errors)
        self.message = message or detail
        self.values = _shown(values)

    @classmethod
    def of(cls, message: str, errors: list[FieldError] | None = None, **values: Any) -> Refused:
        """A Refused whose English `detail` is exactly `message % values`."""
        shown = _shown(values)
        return cls(_filled(message, shown), errors, message, **shown)


class Unauthenticated(ParcoursError):
    status, slug, title = 401, "unauthenticated", "Authentication required"


class Forbidden(ParcoursError):
    status, slug, title = 403, "forbidden", "Forbidden"


class _Said:
    """An error whose detail is `message % values` (English), the message and values
    kept so that the console can say it in the reader's language (`said()`);
    `extensions` are added to the problem as they are (e.g. the taken key, numbers for
    API clients). Mixed into a ParcoursError subclass, before it."""

    message: str
    values: dict[str, str]

    def __init__(
        self, message: str, *, extensions: dict[str, Any] | None = None, **values: Any
    ) -> None:
        self.message = message
        self.values = _shown(values)
        super().__init__(_filled(message, self.values), **(extensions or {}))  # type: ignore[call-arg]


class SaidForbidden(_Said, Forbidden):
    """A Forbidden said in the reader's language (see `_Said`)."""


class NotFound(ParcoursError):
    status, slug, title = 404, "not-found", "Not found"


class SaidNotFound(_Said, NotFound):
    """A NotFound said in the reader's language (see `_Said`)."""


class Conflict(ParcoursError):
    status, slug, title = 409, "conflict", "Conflict"


class SaidConflict(_Said, Conflict):
    """A Conflict said in the reader's language (see `_Said`)."""


class PayloadTooLarge(ParcoursError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class TooManyRequests(ParcoursError):
    status, slug, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(ParcoursError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


PROBLEM_TYPES: tuple[type[ParcoursError], ...] = (
    MalformedRequest,
    InvalidInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    TooManyRequests,
    ServiceUnavailable,
    ParcoursError,
)
