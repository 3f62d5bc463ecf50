"""Segment exports: the members' contact details (CSV), an ad-platform audience file
(hashed identifiers only), and a signed webhook push of the member list.

Every export reads personal data, so each is written to the audit log with the segment
and the number of rows (never the people themselves).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from datetime import datetime

import httpx
from sqlalchemy.orm import Session

from parcours import customers
from parcours.core import audit, webhooks
from parcours.core.audit import Actor
from parcours.core.errors import FieldError, InvalidInput
from parcours.segments.service import get_segment, members_of

FORMATS = ("csv", "audience")
CSV_COLUMNS = ("profile_id", "email", "phone", "first_name", "last_name", "locale")
# Google Customer Match's upload template names; Meta Custom Audiences maps them too.
AUDIENCE_COLUMNS = ("Email", "Phone")


def sha256_email(email: str | None) -> str:
    """SHA-256 (hex) of an email trimmed and lower-cased; empty when there is none."""
    if not email or not email.strip():
        return ""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def sha256_phone(phone: str | None) -> str:
    """SHA-256 (hex) of a phone in E.164 form (+33612345678, as profiles store it)."""
    if not phone:
        return ""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return hashlib.sha256(f"+{digits}".encode()).hexdigest() if digits else ""


def export_lines(
    session: Session, now: datetime, actor: Actor, ref: str, fmt: str
) -> Iterator[str]:
    """The export of a segment's current members as CSV lines (header first)."""
    if fmt not in FORMATS:
        raise InvalidInput(
            f"Unknown export format {fmt!r}: use csv or audience.",
            [FieldError("must be csv or audience", parameter="format")],
        )
    segment = get_segment(session, ref)
    rows = customers.contact_rows(session, members_of(session, segment.id))
    audit.record(
        session, now, actor, "segment.exported", "segment", str(segment.id),
        format=fmt, rows=len(rows),
    )  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS if fmt == "csv" else AUDIENCE_COLUMNS)
    yield flush()
    for row in rows:
        if fmt == "csv":
            writer.writerow([row.id, row.email or "", row.phone or "", row.first_name or "",
                             row.last_name or "", row.locale or ""])  # fmt: skip
        elif row.email or row.phone:
            writer.writerow([sha256_email(row.email), sha256_phone(row.phone)])
        yield flush()


def push_members(
    session: Session,
    now: datetime,
    actor: Actor,
    ref: str,
    url: str,
    secret: str,
    client: httpx.Client | None = None,
) -> int:
    """POST the member profile ids to `url`, signed as outgoing webhooks are
    (`Parcours-Signature`, core/webhooks.py); the HTTP status code."""
    segment = get_segment(session, ref)
    members = [str(pid) for pid in members_of(session, segment.id)]
    body = json.dumps(
        {"segment_key": segment.key, "segment_id": str(segment.id), "profile_ids": members,
         "at": now.isoformat()}
    ).encode()  # fmt: skip
    headers = {
        "Content-Type": "application/json",
        webhooks.SIGNATURE_HEADER: webhooks.signature_header(secret, body, int(now.timestamp())),
        webhooks.EVENT_ID_HEADER: str(uuid.uuid4()),
    }
    audit.record(
        session, now, actor, "segment.pushed", "segment", str(segment.id), rows=len(members)
    )
    http = client or httpx.Client(timeout=webhooks.TIMEOUT_S)
    try:
        return http.post(url, content=body, headers=headers).status_code
    finally:
        if client is None:
            http.close()
