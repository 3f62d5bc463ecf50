"""French and English: message catalogues, locale negotiation, local formatting.

English is the source language; `locale/fr/LC_MESSAGES/messages.po` holds the French
catalogue, compiled in memory when first needed so no build step is required.
"""

from __future__ import annotations

import io
from datetime import datetime
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

SUPPORTED_LOCALES = ("fr", "en")
LANGUAGE_NAMES = {"fr": "Français", "en": "English"}


@cache
def translations(locale: str) -> NullTranslations:
    """The gettext catalogue for `locale`. Msgids are English: the English catalogue only
    turns codes shown as words (`ready_for_pickup`) into them ("ready for pickup")."""
    po_file = resources.files("parcours").joinpath(f"locale/{locale}/LC_MESSAGES/messages.po")
    if not po_file.is_file():
        return NullTranslations()
    with po_file.open("rb") as fp:
        catalog = read_po(fp, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def gettext(locale: str, message: str) -> str:
    return translations(locale).gettext(message)


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags from an Accept-Language header, best first (q-values honoured)."""
    if not header:
        return []
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate_locale(
    *preferences: str | None, accept_language: str | None = None, default: str = "fr"
) -> str:
    """First supported locale among explicit preferences, then the browser's, then default.

    Explicit preferences come first in the order given (e.g. a `lang` cookie, then
    the user's saved choice).
    """
    for preference in preferences:
        if preference in SUPPORTED_LOCALES:
            return preference
    for tag in parse_accept_language(accept_language):
        try:
            language = Locale.parse(tag.replace("-", "_")).language
        except (UnknownLocaleError, ValueError):
            continue
        if language in SUPPORTED_LOCALES:
            return language
    return default


def format_local_datetime(value: datetime, timezone: str, locale: str) -> str:
    """A UTC timestamp shown in a local time zone, formatted for the locale."""
    local = value.astimezone(ZoneInfo(timezone))
    return str(babel_format_datetime(local, "medium", tzinfo=ZoneInfo(timezone), locale=locale))


def format_number(value: float | int, locale: str) -> str:
    return str(format_decimal(value, locale=locale))
