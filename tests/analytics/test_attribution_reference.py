"""Agreement with the reference implementation, ChannelAttribution (bench extra only):
heuristics exactly, Markov removal-effect shares within its simulation error."""

from __future__ import annotations

import io

import pytest

from parcours.analytics.attribution import attribute
from parcours.analytics.pathfile import read_paths

ca = pytest.importorskip("ChannelAttribution")
pd = pytest.importorskip("pandas")

PATHS = """path;total_conversions;total_conversion_value;total_null
web > email > store visit;20;2000;30
web;35;1750;200
email > web;15;900;60
store visit;40;4000;80
app > web > app;10;300;90
call centre > store visit;12;1500;10
email;5;100;120
app;8;240;150
web > app > web > store visit;9;1100;25
"""


def frame() -> object:
    return pd.read_csv(io.StringIO(PATHS), sep=";")


def test_heuristics_agree_exactly_with_channelattribution() -> None:
    theirs = ca.heuristic_models(
        frame(), "path", "total_conversions", var_value="total_conversion_value", flg_pro=False
    ).set_index("channel_name")
    paths = read_paths(io.StringIO(PATHS))
    for model, column in (
        ("first", "first_touch"),
        ("last", "last_touch"),
        ("linear", "linear_touch"),
    ):
        for channel, conv, value in attribute(paths, model).rows():
            assert conv == pytest.approx(theirs.at[channel, f"{column}_conversions"], abs=1e-9)
            assert value == pytest.approx(theirs.at[channel, f"{column}_value"], abs=1e-9)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_markov_agrees_with_channelattribution_within_its_simulation_error(order: int) -> None:
    out = ca.markov_model(
        frame(),
        "path",
        "total_conversions",
        var_value="total_conversion_value",
        var_null="total_null",
        order=order,
        nsim_start=400_000,
        verbose=False,
        flg_pro=False,
    )
    result = out["result"] if isinstance(out, dict) else out
    theirs = dict(zip(result["channel_name"], result["total_conversions"], strict=True))
    ours = {c: n for c, n, _ in attribute(read_paths(io.StringIO(PATHS)), "markov", order).rows()}
    total = sum(theirs.values())
    for channel, conv in theirs.items():
        if conv >= 0.05 * total:
            assert ours[channel] == pytest.approx(conv, rel=0.04)
