"""French public holidays of the demo: Easter by the Gregorian computus, and the others."""

from datetime import date

import pytest

from parcours.demo.holidays import (
    december_sundays_before_christmas,
    easter_sunday,
    french_public_holidays,
)


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
        (2038, date(2038, 4, 25)),
        (2285, date(2285, 3, 22)),
    ],
)
def test_easter_falls_on_the_published_dates(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


def test_easter_is_always_a_sunday_between_22_march_and_25_april() -> None:
    for year in range(1900, 2200):
        easter = easter_sunday(year)
        assert easter.weekday() == 6
        assert date(year, 3, 22) <= easter <= date(year, 4, 25)


def test_france_has_eleven_public_holidays_with_the_movable_ones_after_easter() -> None:
    holidays = french_public_holidays(2026)
    assert len(holidays) == 11
    assert holidays[date(2026, 4, 6)] == "Lundi de Pâques"
    assert holidays[date(2026, 5, 14)] == "Ascension"
    assert holidays[date(2026, 5, 25)] == "Lundi de Pentecôte"
    assert holidays[date(2026, 7, 14)] == "Fête nationale"


def test_december_sundays_come_before_christmas() -> None:
    assert december_sundays_before_christmas(2026) == [
        date(2026, 12, 6),
        date(2026, 12, 13),
        date(2026, 12, 20),
    ]
