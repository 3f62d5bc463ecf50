"""Attribution models: heuristics exact on hand-made journeys, Markov removal effects
checked against brute-force walk enumeration, Shapley against a hand computation."""

from __future__ import annotations

import itertools
from collections import defaultdict
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcours.analytics.attribution import (
    MAX_SHAPLEY_CHANNELS,
    Attribution,
    Paths,
    attribute,
    markov,
    markov_chain,
    removal_effects,
    shapley,
    shapley_values,
)
from parcours.core.errors import InvalidInput

MODELS = ("first", "last", "linear", "time_decay", "position", "markov", "shapley")


def credit(result: Attribution) -> dict[str, tuple[float, float]]:
    return {c: (float(n), float(v)) for c, n, v in result.rows()}


def journeys() -> Paths:
    """email > web > store, 2 conversions worth 100; web, 1 worth 30; email > email > web,
    1 worth 50 and 4 journeys without conversion."""
    return Paths.from_sequences(
        [["email", "web", "store"], ["web"], ["email", "email", "web"]],
        conversions=[2, 1, 1],
        value=[100, 30, 50],
        nulls=[3, 0, 4],
    )


def test_first_and_last_touch_credit_one_channel_per_journey() -> None:
    assert credit(attribute(journeys(), "first")) == {
        "email": (3, 150),
        "web": (1, 30),
        "store": (0, 0),
    }
    assert credit(attribute(journeys(), "last")) == {
        "store": (2, 100),
        "web": (2, 80),
        "email": (0, 0),
    }


def test_linear_gives_every_touch_an_equal_share_repeats_included() -> None:
    got = credit(attribute(journeys(), "linear"))
    assert got["email"] == pytest.approx((2 / 3 + 2 / 3, 100 / 3 + 100 / 3))
    assert got["web"] == pytest.approx((2 / 3 + 1 + 1 / 3, 100 / 3 + 30 + 50 / 3))
    assert got["store"] == pytest.approx((2 / 3, 100 / 3))


def test_position_based_gives_40_20_40_and_handles_one_and_two_touch_journeys() -> None:
    paths = Paths.from_sequences(
        [["a", "b", "c", "d"], ["a"], ["b", "c"]], conversions=[10, 1, 2], value=[100, 5, 8]
    )
    got = credit(attribute(paths, "position"))
    assert got["a"] == pytest.approx((4 + 1, 40 + 5))
    assert got["b"] == pytest.approx((1 + 1, 10 + 4))
    assert got["c"] == pytest.approx((1 + 1, 10 + 4))
    assert got["d"] == pytest.approx((4, 40))


def test_time_decay_halves_per_touch_back_from_the_end_without_times() -> None:
    paths = Paths.from_sequences([["a", "b", "c"]], conversions=[7], value=[70])
    got = credit(attribute(paths, "time_decay"))  # weights 1/4, 1/2, 1 over 7/4
    assert got["c"] == pytest.approx((4, 40))
    assert got["b"] == pytest.approx((2, 20))
    assert got["a"] == pytest.approx((1, 10))


def test_time_decay_uses_touch_ages_in_days_when_the_journeys_have_them() -> None:
    paths = Paths.from_sequences(
        [["email", "web"]], conversions=[3], value=[300], ages=[[14.0, 0.0]]
    )
    got = credit(attribute(paths, "time_decay"))  # 14 days = two 7-day half-lives
    assert got["web"] == pytest.approx((2.4, 240))
    assert got["email"] == pytest.approx((0.6, 60))
    assert credit(attribute(paths, "time_decay", half_life=14))["email"] == pytest.approx((1, 100))


# --- Markov: brute force -------------------------------------------------------------


def brute_force_chain(
    paths: list[tuple[list[str], int, int]], order: int
) -> dict[object, dict[object, Fraction]]:
    """Transition probabilities built the slow, obvious way (same rules: windows of
    `order` touches, repeated windows once, start/conv/null)."""
    counts: dict[object, dict[object, int]] = defaultdict(lambda: defaultdict(int))
    for touches, conv, null in paths:
        windows = [tuple(touches[i : i + order]) for i in range(max(len(touches) - order, 0) + 1)]
        states: list[tuple[str, ...]] = []
        for w in windows:
            if not states or states[-1] != w:
                states.append(w)
        chain: list[object] = ["start", *states]
        for a, b in itertools.pairwise(chain):
            counts[a][b] += conv + null
        counts[chain[-1]]["conv"] += conv
        counts[chain[-1]]["null"] += null
    return {
        a: {b: Fraction(n, sum(out.values())) for b, n in out.items() if n}
        for a, out in counts.items()
    }


def brute_force_removal(
    chain: dict[object, dict[object, Fraction]], channels: list[str], depth: int
) -> tuple[dict[str, float], float]:
    """P(conversion and the walk touched channel c) / P(conversion) by enumerating every
    walk of at most `depth` steps (exact on an acyclic chain)."""
    touched: dict[str, Fraction] = defaultdict(Fraction)
    total = Fraction(0)

    def walk(node: object, p: Fraction, seen: frozenset[str], steps: int) -> None:
        nonlocal total
        if steps > depth:
            return
        for nxt, q in chain[node].items():
            if nxt == "conv":
                total += p * q
                for c in seen:
                    touched[c] += p * q
            elif nxt != "null":
                assert isinstance(nxt, tuple)
                walk(nxt, p * q, seen | set(nxt), steps + 1)

    walk("start", Fraction(1), frozenset(), 0)
    return {c: float(touched[c] / total) for c in channels}, float(total)


def sequences_paths(paths: list[tuple[list[str], int, int]]) -> Paths:
    return Paths.from_sequences(
        [p for p, _, _ in paths], [c for _, c, _ in paths], nulls=[n for _, _, n in paths]
    )


ACYCLIC = [
    (["a", "b"], 1, 1),
    (["a", "c"], 2, 0),
    (["b"], 0, 3),
    (["c", "b"], 1, 1),
    (["a", "a", "c", "b"], 1, 2),
]
CYCLIC = [
    (["a", "b", "a"], 1, 2),
    (["b", "a", "b"], 2, 0),
    (["a"], 0, 1),
    (["b", "c"], 1, 1),
    (["c", "a", "b", "c"], 1, 3),
]


def test_markov_removal_effects_equal_exact_enumeration_on_an_acyclic_chain() -> None:
    expected, _ = brute_force_removal(brute_force_chain(ACYCLIC, 1), ["a", "b", "c"], 10)
    result = markov(sequences_paths(ACYCLIC), order=1)
    got = dict(zip(result.channels, result.removal_effects, strict=True))  # type: ignore[arg-type]
    assert got == pytest.approx(expected, abs=1e-12)
    total = sum(expected.values())
    conversions = credit(result)
    for c in expected:
        assert conversions[c][0] == pytest.approx(5 * expected[c] / total, abs=1e-9)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_markov_removal_effects_equal_walk_enumeration_on_a_cyclic_chain(order: int) -> None:
    chain = {
        a: {b: float(q) for b, q in out.items()}
        for a, out in brute_force_chain(CYCLIC, order).items()
    }
    # Walks longer than 300 steps carry less than 1e-12 of the probability.
    expected = float_enumeration(chain, ["a", "b", "c"], depth=300)
    result = markov(sequences_paths(CYCLIC), order=order)
    got = dict(zip(result.channels, result.removal_effects, strict=True))  # type: ignore[arg-type]
    assert got == pytest.approx(expected, abs=1e-9)


def float_enumeration(
    chain: dict[object, dict[object, float]], channels: list[str], depth: int
) -> dict[str, float]:
    """Walk enumeration by dynamic programming over (node, channels seen) per step."""
    front: dict[tuple[object, frozenset[str]], float] = {("start", frozenset()): 1.0}
    touched: dict[str, float] = defaultdict(float)
    total = 0.0
    for _ in range(depth):
        nxt_front: dict[tuple[object, frozenset[str]], float] = defaultdict(float)
        for (node, seen), p in front.items():
            for nxt, q in chain[node].items():
                if nxt == "conv":
                    total += p * q
                    for c in seen:
                        touched[c] += p * q
                elif nxt != "null":
                    assert isinstance(nxt, tuple)
                    nxt_front[(nxt, seen | set(nxt))] += p * q
        front = nxt_front
    assert sum(front.values()) < 1e-12
    return {c: touched[c] / total for c in channels}


def test_markov_chain_collapses_repeated_states_and_pads_short_journeys() -> None:
    paths = Paths.from_sequences([["a", "a", "b"], ["b"]], conversions=[1, 1])
    chain = markov_chain(paths, order=2)
    assert {tuple(int(x) for x in s) for s in chain.states} == {(0, 0), (0, 1), (1, -1)}


def test_markov_value_removal_effects_weight_conversions_by_their_value() -> None:
    paths = Paths.from_sequences(
        [["a"], ["b"], ["a", "b"]], conversions=[1, 1, 2], value=[10, 90, 0], nulls=[1, 1, 0]
    )
    result = markov(paths, order=1)
    # Only a's own journeys carry a's value share; b keeps 90 of 100 away from a.
    assert result.value.sum() == pytest.approx(100)
    assert result.value[result.channels.index("b")] > result.value[result.channels.index("a")]


# --- Shapley -------------------------------------------------------------------------


def test_shapley_matches_a_hand_computation() -> None:
    # v({a})=3, v({b})=1, v({a,b})=3+1+4=8: phi_a = (3 + (8-1))/2 = 5, phi_b = 3.
    paths = Paths.from_sequences(
        [["a"], ["b"], ["a", "b", "a"], ["c"]],
        conversions=[3, 1, 4, 0],
        value=[30, 10, 40, 0],
        nulls=[1, 2, 3, 9],
    )
    got = credit(shapley(paths))
    assert got["a"] == pytest.approx((5, 50))
    assert got["b"] == pytest.approx((3, 30))
    assert got["c"] == (0, 0)


def test_shapley_values_of_a_three_player_game_by_hand() -> None:
    # exact worth: {0}:6, {1,2}:6 -> phi = (6, 3, 3); {0,1,2}: 3 -> 1 each more.
    worth = np.zeros((8, 1))
    worth[0b001, 0], worth[0b110, 0], worth[0b111, 0] = 6, 6, 3
    assert shapley_values(worth, 3)[:, 0] == pytest.approx([7, 4, 4])


def test_shapley_refuses_more_channels_than_it_can_enumerate() -> None:
    names = [f"ch{i}" for i in range(MAX_SHAPLEY_CHANNELS + 1)]
    paths = Paths.from_sequences([[n] for n in names], conversions=[1] * len(names))
    with pytest.raises(InvalidInput, match="at most 20 channels"):
        shapley(paths)


# --- errors and properties --------------------------------------------------------


def test_unknown_model_and_bad_order_are_refused() -> None:
    with pytest.raises(InvalidInput, match="Unknown attribution model 'u_shaped'"):
        attribute(journeys(), "u_shaped")
    with pytest.raises(InvalidInput, match="between 1 and 4"):
        attribute(journeys(), "markov", order=5)


def test_paths_refuse_empty_journeys_and_negative_counts() -> None:
    with pytest.raises(InvalidInput, match="at least one touch"):
        Paths.from_sequences([["a"], []], conversions=[1, 1])
    with pytest.raises(InvalidInput, match="not negative"):
        Paths.from_sequences([["a"]], conversions=[-1])


@pytest.mark.parametrize("model", MODELS)
def test_no_conversions_give_honest_zeros(model: str) -> None:
    paths = Paths.from_sequences([["a", "b"], ["b"]], conversions=[0, 0], nulls=[3, 1])
    result = attribute(paths, model)
    assert result.conversions.tolist() == [0, 0]
    assert np.isfinite(result.value).all()


journey = st.tuples(
    st.lists(st.sampled_from("abcd"), min_size=1, max_size=5),
    st.integers(0, 5),
    st.integers(0, 5),
    st.integers(1, 50),
)


def build(rows: list[tuple[list[str], int, int, int]]) -> Paths:
    return Paths.from_sequences(
        [r[0] for r in rows],
        [r[1] for r in rows],
        value=[r[1] * r[3] for r in rows],
        nulls=[r[2] for r in rows],
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(journey, min_size=1, max_size=8), st.sampled_from(MODELS), st.integers(1, 4))
def test_every_model_preserves_conversions_and_value(
    rows: list[tuple[list[str], int, int, int]], model: str, order: int
) -> None:
    paths = build(rows)
    result = attribute(paths, model, order=order)
    assert result.conversions.sum() == pytest.approx(paths.conversions.sum())
    assert result.value.sum() == pytest.approx(paths.value.sum())
    assert (result.conversions >= -1e-9).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(journey, min_size=1, max_size=6), st.sampled_from(MODELS), st.integers(1, 4))
def test_channels_in_symmetric_positions_get_equal_credit(
    rows: list[tuple[list[str], int, int, int]], model: str, order: int
) -> None:
    swap = {"a": "b", "b": "a", "c": "c", "d": "d"}
    mirrored = rows + [([swap[t] for t in p], c, n, v) for p, c, n, v in rows]
    got = credit(attribute(build(mirrored), model, order=order))
    if "a" in got:
        assert got["a"] == pytest.approx(got["b"], rel=1e-9, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 9), st.integers(0, 9)), min_size=1),
    st.integers(1, 4),
)
def test_markov_of_any_order_on_one_touch_journeys_is_last_touch(
    rows: list[tuple[str, int, int]], order: int
) -> None:
    paths = Paths.from_sequences(
        [[c] for c, _, _ in rows], [n for _, n, _ in rows], nulls=[m for _, _, m in rows]
    )
    got = attribute(paths, "markov", order=order).conversions
    assert got == pytest.approx(attribute(paths, "last").conversions, abs=1e-9)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_the_three_exact_solvers_agree(order: int) -> None:
    rng = np.random.default_rng(order)
    lengths = rng.integers(1, 7, size=300)
    sequences = [[str(c) for c in rng.integers(0, 6, size=n)] for n in lengths]
    paths = Paths.from_sequences(
        sequences,
        conversions=rng.integers(0, 3, size=300),
        value=rng.integers(0, 3, size=300) * 10.0,
        nulls=rng.integers(0, 4, size=300),
    )
    chain = markov_chain(paths, order)
    dense, direct, series = (
        removal_effects(chain, len(paths.channels), method)
        for method in ("dense", "direct", "series")
    )
    for conv, value in (direct, series):
        assert conv == pytest.approx(dense[0], abs=1e-10)
        assert value == pytest.approx(dense[1], abs=1e-10)


def transition_counts_by_hand(paths: Paths, order: int) -> dict[tuple[object, object], float]:
    counts: dict[tuple[object, object], float] = defaultdict(float)
    for touches, conv, nulls in zip(paths.sequences(), paths.conversions, paths.nulls, strict=True):
        if conv + nulls == 0:
            continue
        windows = [touches[i : i + order] for i in range(max(len(touches) - order + 1, 1))]
        walk: list[object] = ["start"]
        for window in windows:
            if window != walk[-1]:
                walk.append(window)
        for a, b in itertools.pairwise(walk):
            counts[(a, b)] += conv + nulls
        counts[(walk[-1], "conv")] += conv
        counts[(walk[-1], "null")] += nulls
    return {edge: n for edge, n in counts.items() if n}


@pytest.mark.parametrize(("channels", "order"), [(5, 1), (5, 3), (40, 4)])
def test_markov_chain_counts_every_transition(channels: int, order: int) -> None:
    # 40 channels at order 4: a key space too large for the lookup table (sorted keys).
    rng = np.random.default_rng(channels * order)
    sequences = [
        [f"c{c:02d}" for c in rng.integers(0, channels, size=n)]
        for n in rng.integers(1, 7, size=200)
    ]
    paths = Paths.from_sequences(
        sequences, conversions=rng.integers(0, 3, size=200), nulls=rng.integers(0, 2, size=200)
    )
    chain = markov_chain(paths, order)
    names: list[object] = ["start"]
    names += [tuple(paths.channels[c] for c in state if c >= 0) for state in chain.states]
    names += ["conv", "null"]
    matrix = chain.counts.tocoo()
    got = {
        (names[a], names[b]): n for a, b, n in zip(matrix.row, matrix.col, matrix.data, strict=True)
    }
    assert got == transition_counts_by_hand(paths, order)
