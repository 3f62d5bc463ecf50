"""The French catalogue covers every message the console can show.

Literal msgids are extracted from the templates with Babel, through `babel.cfg`, as
`pybabel extract` does; dynamic ones (roles, services, error titles...) come from
`parcours.i18n_catalog.dynamic_msgids()`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from starlette.requests import Request

from parcours.core.i18n import negotiate_locale, translations
from parcours.core.models import User
from parcours.i18n_catalog import dynamic_msgids
from parcours.web.console import ConsoleContext, render

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PO_FILE = SRC / "parcours" / "locale" / "fr" / "LC_MESSAGES" / "messages.po"

# Words that French writes exactly as English does; any other msgid whose msgstr
# equals it is an untranslated copy.
SAME_IN_FRENCH = frozenset(
    {
        "Action",
        "Attribution",
        "Activation",
        "active",
        "Code",
        "Commerce",
        "Console",
        "Description",
        "Drive",
        "Segment",
        "Segments",
        "Services",
    }
)

# A python-format conversion, or a lone `%`: the console's newstyle gettext always
# applies `%` formatting, so a stray percent sign in a msgstr breaks the page.
PLACEHOLDER = re.compile(
    r"%(?:\([^)]*\))?[#0 +-]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[diouxXeEfFgGcrsa%]|%"
)


def french_catalog() -> Catalog:
    with PO_FILE.open("rb") as fp:
        return read_po(fp, locale="fr")


def template_msgids() -> dict[str, str]:
    """Every literal msgid of the templates, with where it was first found."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as fp:
        method_map, options_map = parse_mapping_cfg(fp)
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        SRC, method_map, options_map
    ):
        # A plural message is filed in the catalogue under its singular.
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def untranslated(msgids: list[str], catalog: Catalog) -> list[str]:
    """The msgids the catalogue leaves missing, empty, fuzzy or copied from English."""
    problems = []
    for msgid in sorted(msgids):
        entry = catalog.get(msgid)
        if entry is None or entry.fuzzy:
            problems.append(msgid)
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        copied = msgid in strings and msgid not in SAME_IN_FRENCH
        if not all(strings) or copied:
            problems.append(msgid)
    return problems


def test_babel_cfg_extracts_every_template() -> None:
    with (ROOT / "babel.cfg").open(encoding="utf-8") as fp:
        method_map, options_map = parse_mapping_cfg(fp)
    extracted: set[str] = set()
    list(
        extract_from_dir(
            SRC, method_map, options_map, callback=lambda name, method, _opts: extracted.add(name)
        )
    )
    templates = {
        path.relative_to(SRC).as_posix() for path in SRC.glob("parcours/*/templates/**/*.html")
    }
    assert templates
    assert templates <= extracted


def test_every_template_message_has_a_french_translation() -> None:
    found = template_msgids()
    assert "Log out" in found, "extraction found nothing: check babel.cfg"
    missing = untranslated(list(found), french_catalog())
    assert not missing, "Translate these in messages.po: " + "; ".join(
        f"{msgid!r} ({found[msgid]})" for msgid in missing
    )


def test_every_dynamic_message_has_a_french_translation() -> None:
    msgids = dynamic_msgids()
    assert {"staff", "click_and_collect", "Forbidden", "Settings"} <= msgids
    missing = untranslated(list(msgids), french_catalog())
    assert not missing, f"Translate these in messages.po: {missing}"


def test_words_kept_in_english_are_all_still_used() -> None:
    used = set(template_msgids()) | dynamic_msgids()
    stale = SAME_IN_FRENCH - used
    assert not stale, f"Remove from SAME_IN_FRENCH: {sorted(stale)}"


def test_every_translation_keeps_the_placeholders_of_its_msgid() -> None:
    mismatches = []
    for entry in french_catalog():
        if not entry.id:
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        expected = sorted(set().union(*(PLACEHOLDER.findall(i) for i in ids)))
        for string in strings:
            if sorted(set(PLACEHOLDER.findall(string))) != expected:
                mismatches.append((entry.id, string))
    assert not mismatches, f"msgstr placeholders differ from their msgid: {mismatches}"


def test_the_catalogue_declares_french_and_its_plural_rule() -> None:
    catalog = french_catalog()
    assert str(catalog.locale) == "fr"
    assert catalog.charset.lower() == "utf-8"
    assert (catalog.num_plurals, catalog.plural_expr) == (2, "(n > 1)")
    assert not catalog.fuzzy


def test_the_french_catalogue_is_compiled_in_memory() -> None:
    assert translations("fr").gettext("Log out") == "Se déconnecter"
    assert translations("en").gettext("Log out") == "Log out"


def test_the_home_page_greets_the_user_in_french() -> None:
    user = User(username="zoe", display_name="Zoé Martin", role="staff", store_ids=[])
    context = ConsoleContext(
        user=user,
        actor=None,
        csrf_token="token",
        locale="fr",
        timezone="Europe/Paris",
        now=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
    )
    request = Request(
        {"type": "http", "method": "GET", "path": "/console/", "headers": [], "query_string": b""}
    )
    html = render(request, context, "home.html", counters=[], chart={}).body.decode()
    assert "Bienvenue, Zoé Martin" in html
    assert "personnel magasin" in html
    assert "Se déconnecter" in html


def test_the_language_cookie_wins_over_the_users_choice() -> None:
    assert negotiate_locale("en", "fr", accept_language="fr") == "en"


def test_the_users_choice_wins_over_the_browser() -> None:
    assert negotiate_locale(None, "en", accept_language="fr-FR,fr;q=0.9") == "en"


def test_the_browser_language_is_used_without_a_preference() -> None:
    assert negotiate_locale(None, None, accept_language="en-GB,en;q=0.9,fr;q=0.8") == "en"


def test_the_best_supported_browser_language_is_chosen() -> None:
    assert negotiate_locale(None, None, accept_language="de-DE, fr;q=0.5") == "fr"


def test_an_unsupported_browser_language_falls_back_to_the_default() -> None:
    assert negotiate_locale(None, None, accept_language="de") == "fr"
    assert negotiate_locale(None, None, accept_language="de", default="en") == "en"


def test_unsupported_preferences_are_ignored() -> None:
    assert negotiate_locale("de", "es", accept_language="en-US") == "en"
    assert negotiate_locale("", "xx", accept_language=None, default="en") == "en"


def test_every_code_the_console_shows_has_english_words() -> None:
    """Codes such as `ready_for_pickup` reach `_()`; in English they read as words."""
    import re

    from parcours.i18n_catalog import dynamic_msgids

    english = translations("en")
    codes = [m for m in dynamic_msgids() if re.fullmatch(r"[a-z]+(_[a-z]+)+", m)]
    untranslated = sorted(code for code in codes if english.gettext(code) == code)
    assert not untranslated, f"Add English words for these in locale/en: {untranslated}"
