import pytest

from parcours.core.logs import scrub


@pytest.mark.parametrize(
    "line",
    [
        "call +33 6 12 34 56 78 back",
        "call 06.12.34.56.78 back",
        "call 0612345678 back",
        "write to lea.martin@example.com",
    ],
)
def test_personal_data_is_masked(line: str) -> None:
    masked = scrub(line)
    assert "12" not in masked.replace("<phone>", "")
    assert "lea.martin" not in masked


def test_addresses_and_ids_stay_readable() -> None:
    line = "Uvicorn running on http://127.0.0.1:8000, request 01a2091663ce768d, 649 passed"
    assert scrub(line) == line
