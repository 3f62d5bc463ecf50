"""French public holidays (jours fériés) and the December Sunday openings of the demo."""

from __future__ import annotations

from datetime import date, timedelta


def easter_sunday(year: int) -> date:
    """Easter Sunday of a Gregorian year (the anonymous Gregorian computus)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return date(year, month, day + 1)


def french_public_holidays(year: int) -> dict[date, str]:
    """The eleven national public holidays of metropolitan France, with their names."""
    easter = easter_sunday(year)
    return {
        date(year, 1, 1): "Jour de l'an",
        easter + timedelta(days=1): "Lundi de Pâques",
        date(year, 5, 1): "Fête du Travail",
        date(year, 5, 8): "Victoire 1945",
        easter + timedelta(days=39): "Ascension",
        easter + timedelta(days=50): "Lundi de Pentecôte",
        date(year, 7, 14): "Fête nationale",
        date(year, 8, 15): "Assomption",
        date(year, 11, 1): "Toussaint",
        date(year, 11, 11): "Armistice 1918",
        date(year, 12, 25): "Noël",
    }


def december_sundays_before_christmas(year: int) -> list[date]:
    """The Sundays of December before Christmas, when shops may open."""
    first = date(year, 12, 1)
    sunday = first + timedelta(days=(6 - first.weekday()) % 7)
    return [sunday + timedelta(weeks=n) for n in range(4) if (sunday + timedelta(weeks=n)).day < 25]
