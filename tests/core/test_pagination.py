"""Paging refusals: English for API clients, kept as messages for the console."""

from __future__ import annotations

import pytest

from parcours.core.errors import InvalidInput
from parcours.core.pagination import (
    LIMIT,
    MAX_LIMIT,
    NOT_A_CURSOR,
    check_limit,
    decode_cursor,
    paginate,
)


def test_a_cursor_that_is_not_one_is_refused_in_english_pointing_at_the_parameter() -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_cursor("%%%")
    assert refused.value.detail == NOT_A_CURSOR
    assert [e.as_dict() for e in refused.value.errors] == [
        {"detail": "not a valid cursor", "parameter": "cursor"}
    ]


@pytest.mark.parametrize("limit", [0, MAX_LIMIT + 1])
def test_a_limit_out_of_range_is_refused_before_any_query(limit: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        paginate(None, None, None, None, limit)  # type: ignore[arg-type]
    assert refused.value.detail == f"limit must be between 1 and {MAX_LIMIT}"
    assert getattr(refused.value, "message", "") == LIMIT
    assert refused.value.errors[0].parameter == "limit"


@pytest.mark.parametrize("limit", [0, 201])
def test_a_reader_with_its_own_page_size_refuses_beyond_it(limit: int) -> None:
    check_limit(200, 200)
    with pytest.raises(InvalidInput) as refused:
        check_limit(limit, 200)
    assert refused.value.detail == "limit must be between 1 and 200"
    assert [e.as_dict() for e in refused.value.errors] == [
        {"detail": "must be between 1 and 200", "parameter": "limit"}
    ]
