"""`said`: an error's text in the reader's language, product words included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from parcours.core.errors import Refused, SaidConflict, Term, refusal
from parcours.web import console

MESSAGE = "Order %(number)s cannot be cancelled: %(count)s fulfilment(s) already %(statuses)s. Take the goods back as a return."  # noqa: E501


@pytest.fixture
def french() -> Iterator[None]:
    token = console._locale.set("fr")
    yield
    console._locale.reset(token)


def test_terms_stay_english_in_the_detail_and_are_translated_word_by_word(french: None) -> None:
    error = SaidConflict(MESSAGE, number="W1", count=2, statuses=Term("shipped", "delivered"))
    assert error.detail.endswith("already shipped, delivered. Take the goods back as a return.")
    assert console.said(error) == (
        "La commande W1 ne peut pas être annulée : 2 préparation(s) déjà dans l’état : "
        "expédiée, livrée. Reprenez les articles par un retour."
    )


def test_a_plain_value_is_not_translated_even_when_it_is_a_known_word(french: None) -> None:
    error = SaidConflict(MESSAGE, number="delivered", count=1, statuses=Term("delivered"))
    assert console.said(error).startswith("La commande delivered ne peut pas")
    assert console.said(refusal("%(day)s", day=Term("Tuesday"))) == "mardi"


def test_a_refusal_built_from_its_message_says_it_in_english_and_keeps_it(french: None) -> None:
    error = Refused.of(
        "On %(day)s, %(count)s fields are invalid.", None, day=Term("Tuesday"), count=2
    )
    assert error.detail == "On Tuesday, 2 fields are invalid."
    assert error.message == "On %(day)s, %(count)s fields are invalid."
    assert console.said(error) == "On mardi, 2 fields are invalid."
