"""Message templates: FR/EN content per channel, checked when saved, versioned.

Templates are written by marketers, so they run in Jinja2's `SandboxedEnvironment`
(HTML parts autoescaped) with `StrictUndefined`. A template with an error is refused
when it is saved, never at send time: syntax errors, variables outside the documented
context (`CONTEXT_VARIABLES`) and a trial render against `sample_context()` each give
a problem+json whose pointer names the field (`#/html_fr`) and whose detail gives the
line. Every change makes a new version; sends record the version they used.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours.core.errors import ONE_OF, FieldError, NotFound, Refused, SaidConflict, refusal
from parcours.engagement.models import MessageTemplate, MessageTemplateVersion

CHANNELS = ("email", "sms", "push", "webhook")
KINDS = ("marketing", "transactional")
LOCALES = ("fr", "en")
# The content fields of each channel; `_fr`/`_en` fields are templates in that language.
FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("subject", "html", "text"),
    "sms": ("text",),
    "push": ("title", "body", "deep_link"),
    "webhook": ("json",),
}
# At least one language must fill these (the others may stay empty).
REQUIRED: dict[str, tuple[str, ...]] = {
    "email": ("subject",),
    "sms": ("text",),
    "push": ("title", "body"),
    "webhook": ("json",),
}
HTML_FIELDS = frozenset({"html"})
CONTEXT_VARIABLES = (
    "customer",
    "store",
    "cart",
    "promo_code",
    "recommendations",
    "unsubscribe_url",
    "campaign",
    "links",
)
SMS_MAX = 640  # four concatenated SMS
KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# What checking and saving a template refuses, as `message % values` for the console.
KEY_FORM = "use 1-64 lower-case letters, digits, '-', '_' or '.'"
WEBHOOK_TRANSACTIONAL = (
    "a webhook goes to a partner system, not to the person, so no consent covers it: "
    "webhook templates are transactional"
)
AT_LINE = "line %(line)s: %(problem)s"
UNKNOWN_VARIABLE = "line %(line)s: unknown variable %(name)s; known: %(known)s"
NOT_JSON = "does not render as JSON: %(problem)s"
NOT_A_FIELD = "not a field of a %(channel)s template"
IN_A_LANGUAGE = "write it in French or English"
A_BODY = "write an HTML or a text body"
AN_ADDRESS = "give the http(s) address to post to"
NOT_SAVED = "The template cannot be saved."
KEEPS_CHANNEL = "A template keeps its channel and kind: make a new template instead."
STAYS = "stays %(channel)s/%(kind)s"
KEY_EXISTS = "A template with the key %(key)s exists: change it instead."
MESSAGES = (
    KEY_FORM, ONE_OF, WEBHOOK_TRANSACTIONAL, AT_LINE, UNKNOWN_VARIABLE, NOT_JSON, NOT_A_FIELD,
    IN_A_LANGUAGE, A_BODY, AN_ADDRESS, NOT_SAVED, KEEPS_CHANNEL, STAYS, KEY_EXISTS,
)  # fmt: skip


def _environment(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=autoescape, undefined=StrictUndefined)


TEXT_ENV = _environment(False)
HTML_ENV = _environment(True)


@dataclass(frozen=True)
class TemplateInput:
    """What a person writes: `content` maps `<field>_<fr|en>` (and, for webhooks, `url`)
    to text."""

    key: str
    channel: str
    kind: str
    content: Mapping[str, str]


@dataclass(frozen=True)
class TemplateView:
    key: str
    channel: str
    kind: str
    version: int
    content: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived: bool


@dataclass(frozen=True)
class Rendered:
    """A message rendered in one language, ready for its channel."""

    locale: str
    parts: dict[str, str]


# ------------------------------------------------------------------ checking


def sample_context() -> dict[str, Any]:
    """The documented context, filled with sample values (the trial render's input)."""
    return {
        "customer": {
            "id": "00000000-0000-7000-8000-000000000000",
            "first_name": "Léa",
            "last_name": "Martin",
            "locale": "fr",
            "city": "Lyon",
            "postcode": "69002",
            "country": "FR",
            "timezone": "Europe/Paris",
            "traits": {},
        },
        "store": {
            "code": "LYO-1",
            "name": "Maison Lavande Lyon",
            "address": "1 place Bellecour",
            "postcode": "69002",
            "city": "Lyon",
            "phone": "+33478000000",
            "timezone": "Europe/Paris",
            "hours": [{"day": "mon", "date": "2026-03-16", "hours": "10:00-19:00"}],
            "open_today": "10:00-19:00",
        },
        "cart": {
            "items": [
                {
                    "sku": "ROBE-LIN-M",
                    "name": "Robe en lin",
                    "quantity": 1,
                    "price": "59,90 €",
                    "stock_at_store": 3,
                }
            ],
            "total": "59,90 €",
            "items_count": 1,
            "url": "https://shop.example/cart",
        },
        "promo_code": "BDAY-7Q4K-XW2P",
        "recommendations": [
            {
                "sku": "BOUGIE-S",
                "name": "Bougie",
                "price": "19,90 €",
                "url": "https://shop.example/p",
            }
        ],
        "unsubscribe_url": "https://parcours.example/consent/unsubscribe/token",
        "campaign": {"id": "00000000-0000-7000-8000-000000000001", "name": "Soldes"},
        "links": {"shop": "https://shop.example/", "account": "https://shop.example/account"},
    }


def _check_key(template: TemplateInput) -> list[FieldError]:
    errors = []
    if not KEY.match(template.key):
        errors.append(refusal(KEY_FORM, pointer="#/key"))
    if template.channel not in CHANNELS:
        errors.append(refusal(ONE_OF, pointer="#/channel", choices=", ".join(CHANNELS)))
    if template.kind not in KINDS:
        errors.append(refusal(ONE_OF, pointer="#/kind", choices=", ".join(KINDS)))
    elif template.channel == "webhook" and template.kind == "marketing":
        errors.append(refusal(WEBHOOK_TRANSACTIONAL, pointer="#/kind"))
    return errors


def _undeclared_line(tree: nodes.Template, name: str) -> int:
    for node in tree.find_all(nodes.Name):
        if node.name == name and node.ctx == "load":
            return int(node.lineno)
    return 1


def _template_line(exc: BaseException) -> int | None:
    """The line of the template a render error happened on (Jinja rewrites the
    traceback so template frames carry the template's line numbers)."""
    line = None
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def check_source(field_name: str, source: str, html: bool) -> list[FieldError]:
    """Errors of one template text: syntax, unknown variables, trial render."""
    pointer = f"#/{field_name}"
    env = HTML_ENV if html else TEXT_ENV
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return [refusal(AT_LINE, pointer=pointer, line=exc.lineno, problem=exc.message)]
    known = set(CONTEXT_VARIABLES) | set(env.globals)
    unknown = sorted(meta.find_undeclared_variables(tree) - known)
    if unknown:
        listed = ", ".join(CONTEXT_VARIABLES)
        return [
            refusal(
                UNKNOWN_VARIABLE,
                pointer=pointer,
                line=_undeclared_line(tree, name),
                name=repr(name),
                known=listed,
            )
            for name in unknown
        ]
    try:
        out = env.from_string(source).render(sample_context())
    except TemplateError as exc:
        line, problem = _template_line(exc), exc.message or str(exc)
        if line is None:  # Jinja's own words, said as they are
            return [FieldError(problem, pointer=pointer)]
        return [refusal(AT_LINE, pointer=pointer, line=line, problem=problem)]
    if field_name.startswith("json_"):
        try:
            json.loads(out)
        except ValueError as exc:
            return [refusal(NOT_JSON, pointer=pointer, problem=exc)]
    return []


def check_template(template: TemplateInput) -> dict[str, str]:
    """The template's content, cleaned; `InvalidInput` naming every bad field."""
    errors = _check_key(template)
    if errors:
        raise Refused(NOT_SAVED, errors)
    fields = FIELDS[template.channel]
    allowed = {f"{name}_{lang}" for name in fields for lang in LOCALES}
    if template.channel == "webhook":
        allowed.add("url")
    content = {k: v for k, v in template.content.items() if isinstance(v, str) and v.strip()}
    errors = [
        refusal(NOT_A_FIELD, pointer=f"#/{name}", channel=template.channel)
        for name in template.content
        if name not in allowed
    ]
    for name in REQUIRED[template.channel]:
        if not any(content.get(f"{name}_{lang}") for lang in LOCALES):
            errors.append(refusal(IN_A_LANGUAGE, pointer=f"#/{name}_fr"))
    if template.channel == "email" and not any(
        content.get(f"{part}_{lang}") for part in ("html", "text") for lang in LOCALES
    ):
        errors.append(refusal(A_BODY, pointer="#/html_fr"))
    if template.channel == "webhook" and not content.get("url", "").startswith(
        ("https://", "http://")
    ):
        errors.append(refusal(AN_ADDRESS, pointer="#/url"))
    for name, source in sorted(content.items()):
        if name in allowed and name != "url":
            errors.extend(check_source(name, source, name.rsplit("_", 1)[0] in HTML_FIELDS))
    if errors:
        detail = f"The template cannot be saved: {errors[0].pointer} {errors[0].detail}."
        raise Refused(detail, errors, NOT_SAVED)
    return content


# ------------------------------------------------------------------ saving and reading


def _view(template: MessageTemplate, version: MessageTemplateVersion) -> TemplateView:
    return TemplateView(
        template.key,
        template.channel,
        template.kind,
        version.version,
        dict(version.content),
        template.created_at,
        version.created_at,
        template.archived_at is not None,
    )


def save_template(
    session: Session, now: datetime, template: TemplateInput, by: str, create: bool = False
) -> TemplateView:
    """Save a template after checking it; a changed content makes a new version (an
    unchanged one keeps the current). `create` refuses an existing key (409)."""
    content = check_template(template)
    row = session.get(MessageTemplate, template.key)
    if row is not None and create:
        raise SaidConflict(KEY_EXISTS, key=repr(template.key))
    if row is None:
        row = MessageTemplate(
            key=template.key,
            channel=template.channel,
            kind=template.kind,
            current_version=0,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
    elif (row.channel, row.kind) != (template.channel, template.kind):
        stays = refusal(STAYS, pointer="#/channel", channel=row.channel, kind=row.kind)
        raise Refused(KEEPS_CHANNEL, [stays])
    current = session.get(MessageTemplateVersion, (row.key, row.current_version))
    if current is not None and current.content == content and row.archived_at is None:
        return _view(row, current)
    version = MessageTemplateVersion(
        key=row.key, version=row.current_version + 1, content=content, created_at=now,
        created_by=by,
    )  # fmt: skip
    session.add(version)
    row.current_version = version.version
    row.archived_at = None
    row.updated_at = now
    session.flush()
    return _view(row, version)


def get_template(session: Session, key: str, version: int | None = None) -> TemplateView:
    """A template at its current version (or the given one); `NotFound` else."""
    row = session.get(MessageTemplate, key)
    if row is None:
        raise NotFound(f"No message template has the key {key!r}.")
    found = session.get(MessageTemplateVersion, (key, version or row.current_version))
    if found is None:
        raise NotFound(f"Template {key!r} has no version {version}.")
    return _view(row, found)


def list_templates(session: Session, include_archived: bool = False) -> list[TemplateView]:
    """Every template at its current version, by key (one query)."""
    query = (
        select(MessageTemplate, MessageTemplateVersion)
        .join(
            MessageTemplateVersion,
            (MessageTemplateVersion.key == MessageTemplate.key)
            & (MessageTemplateVersion.version == MessageTemplate.current_version),
        )
        .order_by(MessageTemplate.key)
    )
    if not include_archived:
        query = query.where(MessageTemplate.archived_at.is_(None))
    return [_view(t, v) for t, v in session.execute(query).all()]


def archive_template(session: Session, now: datetime, key: str) -> None:
    """Stop using a template (its versions stay, for the deliveries that used them)."""
    row = session.get(MessageTemplate, key)
    if row is None:
        raise NotFound(f"No message template has the key {key!r}.")
    row.archived_at = now
    row.updated_at = now


# ------------------------------------------------------------------ rendering


@lru_cache(maxsize=1024)
def _compiled(html: bool, source: str) -> Template:
    """Compile each template text once per process (a campaign renders it many times)."""
    return (HTML_ENV if html else TEXT_ENV).from_string(source)


def pick_locale(wanted: str | None) -> str:
    return wanted if wanted in LOCALES else "fr"


def render_content(
    channel: str, content: Mapping[str, str], locale: str, context: Mapping[str, Any]
) -> Rendered:
    """Render each part in the customer's language, a part left empty in it falling
    back to the other language. Raises `TemplateError` (the sandbox's or an undefined
    variable) for the caller to record."""
    locale = pick_locale(locale)
    other = "en" if locale == "fr" else "fr"
    parts: dict[str, str] = {}
    for name in FIELDS[channel]:
        source = content.get(f"{name}_{locale}") or content.get(f"{name}_{other}")
        if source:
            parts[name] = _compiled(name in HTML_FIELDS, source).render(dict(context))
    if "url" in content:
        parts["url"] = content["url"]
    return Rendered(locale, parts)
