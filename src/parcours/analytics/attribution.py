"""Multi-touch attribution: who gets the credit for each conversion and its value.

Journeys arrive aggregated as `Paths` (one row per distinct sequence of channels with
its conversions, conversion value and journeys that did not convert, "nulls"), held as
flat numpy arrays so every model is a handful of vectorised operations:

- heuristics: first touch, last touch, linear, time decay, position-based (40/20/40);
- Markov chain of order 1 to 4 with removal effects computed exactly by absorbing-chain
  linear algebra (one sparse LU factorisation per channel, no simulation);
- Shapley value, exact over every coalition of channels (at most `MAX_SHAPLEY_CHANNELS`).

Every model preserves the sums: its conversions add up to the paths' conversions and its
value to their value (the value is in whatever unit the paths carry: cents from the
database, the file's unit from a path file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.sparse.linalg import splu

from parcours.analytics.names import MAX_ORDER, MODELS
from parcours.core.errors import FieldError, InvalidInput

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_SHAPLEY_CHANNELS: Final = 20
#: Time decay on journeys without touch times: a touch one position earlier weighs half.
DEFAULT_HALF_LIFE_TOUCHES: Final = 1.0
#: Time decay on journeys with touch times: a touch 7 days earlier weighs half.
DEFAULT_HALF_LIFE_DAYS: Final = 7.0


@dataclass(frozen=True)
class Paths:
    """Aggregated journeys. Path `p` is `touches[offsets[p]:offsets[p + 1]]` (codes into
    `channels`, oldest first); `ages` (optional, same shape as `touches`) holds each
    touch's age in days before the journey's end; `conversions`, `value` and `nulls` are
    per path. Build with `Paths.from_sequences` or `Paths.from_arrays`."""

    channels: tuple[str, ...]
    offsets: IntArray
    touches: IntArray
    conversions: FloatArray
    value: FloatArray
    nulls: FloatArray
    ages: FloatArray | None = None

    @classmethod
    def from_arrays(
        cls,
        channels: Sequence[str],
        offsets: npt.ArrayLike,
        touches: npt.ArrayLike,
        conversions: npt.ArrayLike,
        value: npt.ArrayLike | None = None,
        nulls: npt.ArrayLike | None = None,
        ages: npt.ArrayLike | None = None,
    ) -> Paths:
        """Check and wrap the arrays; raises InvalidInput on an inconsistent set."""
        off = np.asarray(offsets, dtype=np.int64)
        tch = np.asarray(touches, dtype=np.int64)
        conv = np.asarray(conversions, dtype=np.float64)
        n = len(conv)
        val = np.zeros(n) if value is None else np.asarray(value, dtype=np.float64)
        nul = np.zeros(n) if nulls is None else np.asarray(nulls, dtype=np.float64)
        age = None if ages is None else np.asarray(ages, dtype=np.float64)
        problems: list[str] = []
        if off.shape != (n + 1,) or (n + 1 and off[0] != 0) or off[-1] != len(tch):
            problems.append("offsets must start at 0, end at the number of touches")
        elif n and np.any(np.diff(off) < 1):
            problems.append("every path needs at least one touch")
        if val.shape != (n,) or nul.shape != (n,):
            problems.append("conversions, value and nulls must have one entry per path")
        for name, arr in (("conversions", conv), ("value", val), ("nulls", nul)):
            if arr.shape == (n,) and not (np.all(np.isfinite(arr)) and np.all(arr >= 0)):
                problems.append(f"{name} must be finite and not negative")
        if len(tch) and (tch.min() < 0 or tch.max() >= len(channels)):
            problems.append("touches must be codes of the channels")
        if age is not None and (age.shape != tch.shape or not np.all(np.isfinite(age))):
            problems.append("ages must be finite, one per touch")
        if problems:
            raise InvalidInput("Invalid paths: " + "; ".join(problems) + ".")
        return cls(tuple(channels), off, tch, conv, val, nul, age)

    @classmethod
    def from_sequences(
        cls,
        paths: Sequence[Sequence[str]],
        conversions: npt.ArrayLike,
        value: npt.ArrayLike | None = None,
        nulls: npt.ArrayLike | None = None,
        ages: Sequence[Sequence[float]] | None = None,
    ) -> Paths:
        """Paths from lists of channel names (oldest touch first), one count per path."""
        channels = sorted({c for path in paths for c in path})
        code = {c: i for i, c in enumerate(channels)}
        lengths = np.fromiter((len(p) for p in paths), dtype=np.int64, count=len(paths))
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        touches = np.fromiter((code[c] for p in paths for c in p), dtype=np.int64)
        flat_ages = None if ages is None else [a for path in ages for a in path]
        return cls.from_arrays(channels, offsets, touches, conversions, value, nulls, flat_ages)

    @property
    def lengths(self) -> IntArray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.conversions)

    def sequences(self) -> Iterator[tuple[str, ...]]:
        """Each path as channel names (for display and tests; not for heavy work)."""
        names = np.asarray(self.channels, dtype=object)
        for start, end in zip(self.offsets[:-1], self.offsets[1:], strict=True):
            yield tuple(names[self.touches[start:end]])


@dataclass(frozen=True)
class Attribution:
    """Credit per channel: `conversions[i]` and `value[i]` go to `channels[i]`.
    `removal_effects` (Markov only) are the shares of conversions (and value) lost when
    the channel is removed."""

    model: str
    channels: tuple[str, ...]
    conversions: FloatArray
    value: FloatArray
    removal_effects: FloatArray | None = None
    value_removal_effects: FloatArray | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, float, float]]:
        """(channel, conversions, value) per channel, most credited first."""
        order = np.lexsort((np.arange(len(self.channels)), -self.conversions))
        return [(self.channels[i], float(self.conversions[i]), float(self.value[i])) for i in order]

    def as_dict(self) -> dict[str, tuple[float, float]]:
        return {c: (float(n), float(v)) for c, n, v in zip(*self._columns(), strict=True)}

    def _columns(self) -> tuple[tuple[str, ...], FloatArray, FloatArray]:
        return self.channels, self.conversions, self.value


def _path_index(paths: Paths) -> IntArray:
    """The path of each touch."""
    return np.repeat(np.arange(len(paths), dtype=np.int64), paths.lengths)


def _by_touch_weights(paths: Paths, weights: FloatArray, model: str) -> Attribution:
    """Credit each touch `weights[t]` of its path's conversions and value (the weights of
    one path sum to 1)."""
    owner = _path_index(paths)
    n = len(paths.channels)
    conv: FloatArray = np.bincount(
        paths.touches, weights * paths.conversions[owner], minlength=n
    ).astype(np.float64)
    val: FloatArray = np.bincount(paths.touches, weights * paths.value[owner], minlength=n).astype(
        np.float64
    )
    return Attribution(model, paths.channels, conv, val)


def first_touch(paths: Paths) -> Attribution:
    """All the credit to each journey's first channel."""
    weights = np.zeros(len(paths.touches))
    weights[paths.offsets[:-1]] = 1.0
    return _by_touch_weights(paths, weights, "first")


def last_touch(paths: Paths) -> Attribution:
    """All the credit to each journey's last channel."""
    weights = np.zeros(len(paths.touches))
    weights[paths.offsets[1:] - 1] = 1.0
    return _by_touch_weights(paths, weights, "last")


def linear(paths: Paths) -> Attribution:
    """Equal credit to every touch (a channel touched twice gets two shares)."""
    weights = np.repeat(1.0 / paths.lengths, paths.lengths)
    return _by_touch_weights(paths, weights, "linear")


def position_based(paths: Paths, ends: float = 0.4) -> Attribution:
    """`ends` (40%) each to the first and last touch, the rest shared by the touches in
    between; a one-touch journey gives it all, a two-touch journey half each."""
    if not 0 <= ends <= 0.5:
        raise InvalidInput("The share of the first and last touch must be between 0 and 0.5.")
    lengths = paths.lengths
    middle = np.where(lengths > 2, (1 - 2 * ends) / np.maximum(lengths - 2, 1), 0.0)
    weights = np.repeat(middle, lengths)
    first, last = paths.offsets[:-1], paths.offsets[1:] - 1
    end_share = np.where(lengths == 1, 1.0, np.where(lengths == 2, 0.5, ends))
    weights[first] = end_share
    weights[last] = end_share
    return _by_touch_weights(paths, weights, "position")


def time_decay(paths: Paths, half_life: float | None = None) -> Attribution:
    """Credit halving every `half_life` back from the journey's end: in days when the
    paths carry touch ages (default 7 days), else in touches counted from the last one
    (default 1 touch: the last touch weighs 1, the one before 1/2, then 1/4 …)."""
    if half_life is not None and not half_life > 0:
        raise InvalidInput("The half-life must be positive.")
    if paths.ages is not None:
        distance = np.maximum(paths.ages, 0.0)
        half = DEFAULT_HALF_LIFE_DAYS if half_life is None else half_life
    else:
        owner = _path_index(paths)
        distance = (paths.offsets[1:][owner] - 1 - np.arange(len(paths.touches))).astype(float)
        half = DEFAULT_HALF_LIFE_TOUCHES if half_life is None else half_life
    # Shift by each path's smallest distance so the largest weight is 1 (no underflow).
    owner = _path_index(paths)
    nearest = np.minimum.reduceat(distance, paths.offsets[:-1]) if len(paths) else distance
    raw = np.exp2(-(distance - nearest[owner]) / half)
    totals = np.add.reduceat(raw, paths.offsets[:-1]) if len(paths) else raw
    return _by_touch_weights(paths, raw / totals[owner], "time_decay")


# --- Markov chains -----------------------------------------------------------------


@dataclass(frozen=True)
class MarkovChain:
    """A chain over `states` (k-tuples of channel codes, -1 padding for journeys shorter
    than k). Node 0 is the start, nodes 1..S the states, S+1 conversion, S+2 null;
    `counts` holds observed transitions and `value_out[i]` the conversion value observed
    when leaving node i to conversion."""

    order: int
    states: IntArray  # (S, k)
    counts: sparse.csr_matrix
    value_out: FloatArray

    @property
    def size(self) -> int:
        return len(self.states)


def _window_keys(paths: Paths, order: int) -> tuple[IntArray, IntArray]:
    """One integer per window of k consecutive touches (base n+1 digits of touch + 1,
    0 as the padding of a path shorter than k, which is one short window), with the path
    of each window, in path order."""
    owner = np.repeat(np.arange(len(paths), dtype=np.int64), paths.lengths)
    if order == 1:
        return paths.touches + 1, owner
    ends = paths.offsets[1:][owner]
    position = np.arange(len(paths.touches), dtype=np.int64)
    first = position == paths.offsets[:-1][owner]
    starts = np.flatnonzero((position + order <= ends) | (first & (ends - position < order)))
    base = np.int64(len(paths.channels) + 1)
    padded = np.append(paths.touches + 1, 0)  # the last slot: padding
    limit = ends[starts]
    keys = np.zeros(len(starts), dtype=np.int64)
    for step in range(order):
        index = starts + step
        keys = keys * base + padded[np.where(index < limit, index, len(paths.touches))]
    return keys, owner[starts]


def _state_codes(keys: IntArray, base: int, order: int) -> tuple[IntArray, IntArray]:
    """The distinct window keys in increasing order as (S, k) states (channel codes, -1
    padding) and each window's state number. A lookup table replaces sorting when the
    key space is small (it is for order 1 and 2, and for 3 and 4 with few channels)."""
    space = base**order
    if space <= max(8 * len(keys), 1 << 20):
        present = np.zeros(space, dtype=bool)
        present[keys] = True
        distinct = np.flatnonzero(present)
        codes = (np.cumsum(present) - 1)[keys]
    else:
        distinct, codes = np.unique(keys, return_inverse=True)
    powers = base ** np.arange(order - 1, -1, -1, dtype=np.int64)
    states = (distinct[:, None] // powers[None, :]) % base - 1
    return states.astype(np.int64), codes.astype(np.int64, copy=False).reshape(-1)


def _count_matrix(edges: IntArray, weights: FloatArray, nodes: int) -> Any:
    """Summed transition weights (edge key: source * nodes + target) as a CSR matrix built
    straight from sorted edge keys (no COO conversion). Self-loops are left out (a state
    repeated in a row counts once), and so are edges of zero weight."""
    if nodes * nodes <= max(8 * len(edges), 1 << 20):
        summed = np.bincount(edges, weights, minlength=nodes * nodes)
        summed[:: nodes + 1] = 0.0
        keys = np.flatnonzero(summed)
        data = summed[keys]
    else:
        keys, inverse = np.unique(edges, return_inverse=True)
        data = np.bincount(inverse.reshape(-1), weights, minlength=len(keys))
        data[keys // nodes == keys % nodes] = 0.0
        keys, data = keys[data != 0], data[data != 0]
    rows, columns = np.divmod(keys, nodes)
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=nodes))))
    matrix = sparse.csr_matrix((data, columns, indptr), shape=(nodes, nodes))
    matrix.has_sorted_indices = True
    return matrix


def markov_chain(paths: Paths, order: int = 1) -> MarkovChain:
    """The order-k chain of the journeys: states are windows of k consecutive touches;
    repeated consecutive states count once (as ChannelAttribution does)."""
    if not 1 <= order <= MAX_ORDER:
        raise InvalidInput(f"The Markov order must be between 1 and {MAX_ORDER}.")
    live = (paths.conversions + paths.nulls) > 0
    kept = _subset(paths, live)
    if order == 1:  # the windows are the touches
        keys, bounds = kept.touches + 1, kept.offsets
    else:
        keys, owner = _window_keys(kept, order)
        bounds = np.zeros(len(kept) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner, minlength=len(kept)), out=bounds[1:])
    states, codes = _state_codes(keys, len(paths.channels) + 1, order)
    codes += 1  # node ids: 0 is the start
    n_states, windows, journeys = len(states), len(codes), len(kept)
    nodes = n_states + 3
    ends = codes[bounds[1:] - 1]
    # Edges as source * nodes + target: each window from the one before it in its path
    # (from the start node for the first), then each path's end to conversion and null.
    # A repeated state makes a self-loop, which the count matrix leaves out.
    edges = np.empty(windows + 2 * journeys, dtype=np.int64)
    inner = edges[:windows]
    inner[1:] = codes[:-1]
    inner[bounds[:-1]] = 0
    inner *= nodes
    inner += codes
    np.multiply(ends, nodes, out=edges[windows : windows + journeys])
    edges[windows : windows + journeys] += n_states + 1
    np.multiply(ends, nodes, out=edges[windows + journeys :])
    edges[windows + journeys :] += n_states + 2
    weights = np.empty(len(edges))
    weights[:windows] = np.repeat(kept.conversions + kept.nulls, np.diff(bounds))
    weights[windows : windows + journeys] = kept.conversions
    weights[windows + journeys :] = kept.nulls
    counts = _count_matrix(edges, weights, nodes)
    value_out = np.bincount(ends, kept.value, minlength=nodes).astype(np.float64)
    return MarkovChain(order, states, counts, value_out)


def _subset(paths: Paths, keep: npt.NDArray[np.bool_]) -> Paths:
    if keep.all():
        return paths
    lengths = paths.lengths[keep]
    touch_keep = np.repeat(keep, paths.lengths)
    return Paths(
        paths.channels,
        np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        paths.touches[touch_keep],
        paths.conversions[keep],
        paths.value[keep],
        paths.nulls[keep],
        None if paths.ages is None else paths.ages[touch_keep],
    )


SERIES_TOLERANCE: Final = 1e-13
SERIES_MAX_STEPS: Final = 20_000
DIRECT_MAX_STATES: Final = 400
DENSE_MAX_STATES: Final = 200


def removal_effects(
    chain: MarkovChain, n_channels: int, method: str = "auto"
) -> tuple[FloatArray, FloatArray]:
    """Per channel, the share of the chain's conversions (and of their value) lost when
    every state holding the channel leads to null instead: 1 - P'(conv) / P(conv).

    Exact, by absorbing-chain linear algebra: conversion probabilities are absorption
    probabilities x = (I - Q)^-1 r over the transient nodes kept, with r the one-step
    conversion probabilities and, for the value, r weighted by the mean value of a
    conversion leaving each node. `dense` solves every channel's system in one batched
    dense solve (a removed node's equation reading x = 0); `direct` solves each by
    sparse LU; `series` sums x = r + Q r + Q^2 r + … for all channels at once and stops
    when the probability of still walking after n steps, which bounds what is left of
    the sum, is below 1e-13 of the result (a certified bound, not an estimate); `auto`
    takes `dense` up to DENSE_MAX_STATES states and the series beyond (LU fill-in grows
    fast with order), with `direct` if the series is too slow to converge."""
    n_nodes = chain.size + 3
    out = np.asarray(chain.counts.sum(axis=1)).reshape(-1)
    scale = np.divide(1.0, out, out=np.zeros(n_nodes), where=out > 0)
    transitions = (sparse.diags(scale) @ chain.counts).tocsr()
    transient = n_nodes - 2  # start and states
    q = transitions[:transient, :transient].tocsr()
    rhs = np.column_stack(
        (
            transitions[:transient, transient].toarray().reshape(-1),
            chain.value_out[:transient] * scale[:transient],
        )
    )
    keep = np.ones((transient, n_channels + 1), dtype=bool)  # last column: nothing removed
    for column in chain.states.T:  # at most 4 columns
        valid = column >= 0
        keep[1:][valid, column[valid]] = False
    if method == "auto":
        method = "dense" if transient <= DENSE_MAX_STATES else "series"
    found: FloatArray | None = None
    if method == "dense":
        found = _absorption_dense(q.toarray(), rhs, keep)
    elif method == "series":
        found = _absorption_by_series(q, rhs, keep)
    if found is None:  # the direct way, or a series too slow to converge
        found = np.stack([_absorption_direct(q, rhs, keep[:, j]) for j in range(n_channels + 1)])
    base, removed = found[-1], found[:-1]
    ratio = np.divide(removed, base, out=np.ones_like(removed), where=base > 0)
    effects = np.clip(1.0 - ratio, 0.0, 1.0)
    return effects[:, 0], effects[:, 1]


def _absorption_dense(q: FloatArray, rhs: FloatArray, keep: npt.NDArray[np.bool_]) -> FloatArray:
    """The same for every column of `keep` at once on a small chain: one batched dense
    solve, a removed node's equation reading x = 0."""
    transient, systems = keep.shape
    removed = ~keep.T  # (systems, transient)
    matrices = np.broadcast_to(np.eye(transient) - q, (systems, transient, transient)).copy()
    matrices[removed] = 0.0
    system, node = np.nonzero(removed)
    matrices[system, node, node] = 1.0
    sides = np.broadcast_to(rhs, (systems, transient, 2)).copy()
    sides[removed] = 0.0
    return np.asarray(np.linalg.solve(matrices, sides)[:, 0, :], dtype=np.float64)


def _absorption_direct(
    q: sparse.csr_matrix, rhs: FloatArray, keep: npt.NDArray[np.bool_]
) -> FloatArray:
    """Probability (and expected value) of absorption in conversion from the start node
    (index 0, always kept) when only the `keep` transient nodes remain: sparse LU."""
    index = np.flatnonzero(keep)
    sub = q[index][:, index]
    system = (sparse.identity(len(index), format="csc") - sub).tocsc()
    solution = splu(system).solve(np.ascontiguousarray(rhs[index]))
    return np.asarray(solution[0], dtype=np.float64)


def _absorption_by_series(
    q: sparse.csr_matrix, rhs: FloatArray, keep: npt.NDArray[np.bool_]
) -> FloatArray | None:
    """The same for every column of `keep` at once, by the series sum x = sum Q_K^n r_K;
    None when it has not converged within SERIES_MAX_STEPS steps."""
    transient, systems = keep.shape
    mask = np.repeat(keep, 2, axis=1).astype(np.float64)
    r = np.tile(rhs, (1, systems)) * mask
    x = r.copy()
    walking = np.zeros(transient)
    walking[0] = 1.0
    q_t = q.T.tocsr()
    per_step = np.divide(rhs[:, 1], rhs[:, 0], out=np.zeros(transient), where=rhs[:, 0] > 0)
    largest = max(1.0, float(per_step.max(initial=0.0)))
    for _ in range(SERIES_MAX_STEPS):
        x = mask * (q @ x) + r
        walking = q_t @ walking
        left = float(walking.sum()) * largest
        base = x[0, -2:]
        floor = float(base[base > 0].min()) if (base > 0).any() else 1.0
        if left <= SERIES_TOLERANCE * floor:
            return np.asarray(x[0], dtype=np.float64).reshape(systems, 2)
    return None


def markov(paths: Paths, order: int = 1, method: str = "auto") -> Attribution:
    """Conversions and value shared in proportion to each channel's removal effect in the
    order-k Markov chain of the journeys (Anderl et al. 2014; ChannelAttribution's
    method, computed exactly instead of simulated)."""
    chain = markov_chain(paths, order)
    conv_effect, value_effect = removal_effects(chain, len(paths.channels), method)
    conv = _share(conv_effect, float(paths.conversions.sum()))
    val = _share(value_effect, float(paths.value.sum()))
    return Attribution(
        "markov",
        paths.channels,
        conv,
        val,
        removal_effects=conv_effect,
        value_removal_effects=value_effect,
        extra={"order": float(order), "states": float(chain.size)},
    )


def _share(weights: FloatArray, total: float) -> FloatArray:
    """`total` split in proportion to `weights` (zeros when there is nothing to split)."""
    mass = float(weights.sum())
    if mass <= 0 or total == 0:
        return np.zeros(len(weights))
    return weights * (total / mass)


# --- Shapley value -------------------------------------------------------------------


def shapley(paths: Paths) -> Attribution:
    """Exact Shapley value over every coalition of the channels that converted.

    The worth of a coalition S is what the journeys using only channels of S brought:
    v(S) = sum of conversions (value) of the paths whose set of channels is a subset of S
    (Zhao et al. 2018). Computed over all 2^n coalitions with a subset-sum transform, so
    at most `MAX_SHAPLEY_CHANNELS` channels may appear in converting journeys."""
    owner = _path_index(paths)
    converting = (paths.conversions > 0) | (paths.value != 0)
    active = np.unique(paths.touches[converting[owner]])
    n = len(active)
    if n > MAX_SHAPLEY_CHANNELS:
        raise InvalidInput(
            f"The Shapley model is exact over all coalitions and handles at most "
            f"{MAX_SHAPLEY_CHANNELS} channels; the converting journeys use {n}. "
            "Group channels or use the markov model.",
            [FieldError(f"{n} channels", parameter="model")],
        )
    conv = np.zeros(len(paths.channels))
    val = np.zeros(len(paths.channels))
    if n == 0:
        return Attribution("shapley", paths.channels, conv, val)
    position = np.full(len(paths.channels), -1, dtype=np.int64)
    position[active] = np.arange(n)
    bits = np.zeros(len(paths), dtype=np.int64)
    touch_bits = np.left_shift(1, np.maximum(position[paths.touches], 0))
    np.bitwise_or.at(bits, owner, np.where(position[paths.touches] >= 0, touch_bits, 0))
    worth = np.zeros((1 << n, 2))
    np.add.at(
        worth, bits[converting], np.column_stack((paths.conversions, paths.value))[converting]
    )
    phi = shapley_values(worth, n)
    conv[active], val[active] = phi[:, 0], phi[:, 1]
    return Attribution("shapley", paths.channels, conv, val)


def shapley_values(exact_worth: FloatArray, n: int) -> FloatArray:
    """Shapley values of the n players of the game v(S) = sum of `exact_worth[T]` over
    the coalitions T ⊆ S (coalitions as bit masks; columns are separate games)."""
    worth = exact_worth.copy()
    masks = np.arange(1 << n, dtype=np.int64)
    for player in range(n):  # zeta transform: worth[S] = sum over subsets
        has = (masks >> player) & 1 == 1
        worth[has] += worth[masks[has] ^ (1 << player)]
    size = np.zeros(1 << n, dtype=np.int64)
    for player in range(n):
        size += (masks >> player) & 1
    # weight(|S|) = |S|! (n - |S| - 1)! / n! for a coalition S not holding the player.
    log_fact = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, n + 1)))))
    sizes = np.arange(n)
    weight_by_size = np.exp(log_fact[sizes] + log_fact[n - sizes - 1] - log_fact[n])
    phi = np.zeros((n, worth.shape[1]))
    for player in range(n):
        without = masks[(masks >> player) & 1 == 0]
        gain = worth[without | (1 << player)] - worth[without]
        phi[player] = weight_by_size[size[without]] @ gain
    return phi


# --- one entry point --------------------------------------------------------------


def attribute(
    paths: Paths, model: str, order: int = 1, half_life: float | None = None
) -> Attribution:
    """Run one model by name (see `MODELS`); `order` is for markov, `half_life` for
    time_decay."""
    runners: dict[str, Callable[[], Attribution]] = {
        "first": lambda: first_touch(paths),
        "last": lambda: last_touch(paths),
        "linear": lambda: linear(paths),
        "time_decay": lambda: time_decay(paths, half_life),
        "position": lambda: position_based(paths),
        "markov": lambda: markov(paths, order),
        "shapley": lambda: shapley(paths),
    }
    if model not in runners:
        raise InvalidInput(
            f"Unknown attribution model {model!r}: use one of {', '.join(MODELS)}.",
            [FieldError(f"unknown model {model!r}", parameter="model")],
        )
    if not 1 <= order <= MAX_ORDER:
        raise InvalidInput(
            f"The Markov order must be between 1 and {MAX_ORDER}.",
            [FieldError(f"order {order}", parameter="order")],
        )
    return runners[model]()
