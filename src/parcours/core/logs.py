"""Structured logs that carry the request id and never personal data.

Callers log ids and counts, not names, emails or phone numbers; as a second line of
defence a filter masks anything shaped like an email address or a phone number.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str | None] = ContextVar("parcours_request_id", default=None)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d .-]{7,}\d(?![\w-])")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def _mask_phone(match: re.Match[str]) -> str:
    # 127.0.0.1 is shaped like 06.12.34.56 but is an address, which logs need.
    return match.group(0) if _IPV4.match(match.group(0)) else "<phone>"


def scrub(text: str) -> str:
    """Mask emails and phone numbers in a log line."""
    return _PHONE.sub(_mask_phone, _EMAIL.sub("<email>", text))


class ScrubPersonalData(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request_id = request_id_var.get()
        prefix = f"[{request_id}] " if request_id else ""
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        tail = " " + " ".join(f"{k}={v}" for k, v in extras.items()) if extras else ""
        line = f"{record.levelname:<7} {record.name}: {prefix}{record.getMessage()}{tail}"
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info))
        return line


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send Parcours and uvicorn logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ScrubPersonalData())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log prints raw paths with query strings; ours logs route templates.
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic announces its dialect each time /ready checks for pending migrations.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
