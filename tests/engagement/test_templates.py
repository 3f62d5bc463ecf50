"""Templates fail when saved, not when sent: syntax errors, unknown variables and a
trial render, each naming the field and the line. Changes make new versions."""

from __future__ import annotations

import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.engagement import TemplateInput, get_template, save_template
from tests.engagement.helpers import EMAIL


def save(
    db: Database,
    clock: ManualClock,
    content: dict[str, str],
    channel: str = "email",
    kind: str = "marketing",
    key: str = "soldes",
):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        return save_template(
            session, clock.now(), TemplateInput(key, channel, kind, content), "test"
        )


def refusal(
    db: Database, clock: ManualClock, content: dict[str, str], **kw: str
) -> list[dict[str, str]]:
    with pytest.raises(InvalidInput) as raised:
        save(db, clock, content, **kw)
    return [e.as_dict() for e in raised.value.errors]


def test_a_syntax_error_is_refused_at_save_time_with_field_and_line(
    db: Database, clock: ManualClock
) -> None:
    [error] = refusal(db, clock, {**EMAIL, "html_fr": "<p>Bonjour</p>\n{% if customer %}"})
    assert error["pointer"] == "#/html_fr"
    assert error["detail"].startswith("line 2:")


def test_an_unknown_variable_is_refused_with_its_line(db: Database, clock: ManualClock) -> None:
    [error] = refusal(db, clock, {**EMAIL, "text_en": "Hi\n{{ client.first_name }}"})
    assert error["pointer"] == "#/text_en"
    assert "line 2" in error["detail"]
    assert "'client'" in error["detail"]


def test_the_trial_render_catches_an_unknown_attribute(db: Database, clock: ManualClock) -> None:
    [error] = refusal(db, clock, {**EMAIL, "subject_fr": "{{ customer.shoe_size }}"})
    assert error["pointer"] == "#/subject_fr"
    assert "shoe_size" in error["detail"]


def test_the_sandbox_refuses_unsafe_attribute_access(db: Database, clock: ManualClock) -> None:
    [error] = refusal(db, clock, {**EMAIL, "text_fr": "{{ customer.__class__.__mro__ }}"})
    assert error["pointer"] == "#/text_fr"


def test_a_webhook_body_must_render_as_json(db: Database, clock: ManualClock) -> None:
    [error] = refusal(
        db, clock, {"url": "https://crm.example/hook", "json_fr": "{ {{ customer.first_name }} }"},
        channel="webhook", kind="transactional",
    )  # fmt: skip
    assert error["pointer"] == "#/json_fr"


def test_an_email_needs_a_subject_in_one_language(db: Database, clock: ManualClock) -> None:
    errors = refusal(db, clock, {"text_fr": "Bonjour"})
    assert errors[0]["pointer"] == "#/subject_fr"


def test_html_is_autoescaped(db: Database, clock: ManualClock) -> None:
    from parcours.engagement.templates_service import render_content

    view = save(db, clock, EMAIL)
    context = {"customer": {"first_name": "<script>"}}
    rendered = render_content("email", view.content, "fr", context)
    assert "&lt;script&gt;" in rendered.parts["html"]
    assert rendered.parts["text"] == "Bonjour <script>"


def test_a_change_makes_a_new_version_and_the_old_one_stays(
    db: Database, clock: ManualClock
) -> None:
    assert save(db, clock, EMAIL).version == 1
    assert save(db, clock, EMAIL).version == 1  # unchanged: same version
    assert save(db, clock, {**EMAIL, "subject_fr": "Nouveau"}).version == 2
    with db.transaction() as session:
        assert get_template(session, "soldes").content["subject_fr"] == "Nouveau"
        assert get_template(session, "soldes", 1).content["subject_fr"] == EMAIL["subject_fr"]
