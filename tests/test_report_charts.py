"""The inline SVG chart helpers: axes that cover the data, and well-formed SVG for any input."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseledger import _charts as charts

SVG = {"s": "http://www.w3.org/2000/svg"}
labels = st.text(min_size=1, max_size=12).filter(lambda t: t.isprintable())
counts = st.one_of(st.none(), st.integers(0, 100_000).map(float), st.floats(0, 1e6))


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_ticks_start_at_zero_cover_the_maximum_and_are_evenly_spaced(maximum: float) -> None:
    ticks = charts.nice_ticks(maximum)
    assert ticks[0] == 0
    assert ticks[-1] >= maximum
    assert 2 <= len(ticks) <= 12
    step = ticks[1] - ticks[0]
    assert step > 0
    for a, b in itertools.pairwise(ticks):
        assert math.isclose(b - a, step, rel_tol=1e-9)
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m, rel_tol=1e-9) for m in (1, 2, 2.5, 5, 10))


def test_wide_characters_count_about_twice_as_wide() -> None:
    assert charts.text_width("중앙동") > charts.text_width("abc") * 1.5
    assert charts.text_width("") == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(labels, min_size=1, max_size=8),
    st.lists(st.sampled_from(charts.STYLES), min_size=1, max_size=3),
    st.data(),
)
def test_every_chart_is_well_formed_svg_whatever_the_data(
    categories: list[str], styles: list[str], data: st.DataObject
) -> None:
    series = [
        charts.Series(
            f"series {i}",
            data.draw(st.lists(counts, min_size=len(categories), max_size=len(categories))),
            style,
        )
        for i, style in enumerate(styles)
    ]
    drawn = [
        charts.grouped_bars(categories, series, title="<막대> & bars", reference=(30, "기한")),
        charts.stacked_bars(categories, series, title="stacked"),
        charts.stacked_columns(
            categories, series, title="columns", divider=1, divider_labels=("before", "after")
        ),
        charts.funnel(
            [(c, v or 0.0, v) for c, v in zip(categories, series[0].values, strict=True)],
            title="funnel",
            current_label="now",
            previous_label="before",
        ),
    ]
    for svg in drawn:
        root = parse(svg)
        title = root.find("s:title", SVG)
        assert title is not None
        assert title.text
        for rect in root.findall(".//s:rect", SVG):
            for attribute in ("x", "y", "width", "height"):
                value = float(rect.get(attribute, "0"))
                assert math.isfinite(value)
            assert float(rect.get("width", "0")) >= 0
            assert float(rect.get("height", "0")) >= 0
        texts = "".join(t.text or "" for t in root.iter(f"{{{SVG['s']}}}text"))
        assert "series 0" in texts or svg is drawn[3]
    assert "&lt;막대&gt; &amp; bars" in drawn[0]


def test_a_bar_is_as_long_as_its_value() -> None:
    svg = charts.grouped_bars(
        ["a", "b"], [charts.Series("now", [10, 40], "solid")], title="t", width=460
    )
    root = parse(svg)
    bars = [r for r in root.findall(".//s:rect", SVG) if r.get("height") != "12.0"]
    widths = sorted(float(r.get("width", "0")) for r in bars)
    assert widths[-1] == pytest.approx(widths[-2] * 4, abs=0.3)
