"""The visual HTML report: self-contained, true to the KPIs, private, and it really draws.

The drawing test renders the report in Debian's headless ``chromium`` and reads the
screenshot (``.ci/run`` installs chromium; set ``CASELEDGER_REQUIRE_CHROMIUM=1`` to make
its absence a failure rather than a skip).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from caseledger import Ledger
from caseledger import demo as demo_module
from caseledger.cli import main
from caseledger.errors import InvalidInput
from caseledger.report import latest_period, render_report, write_report
from tests.conftest import KST, MASTER_KEY
from tests.scenarios import scenario_1

PERIOD = "2022Q4"
GENERATED = datetime(2023, 3, 2, 9, tzinfo=KST)
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
INK = (0x1F, 0x3B, 0x5C)
LIGHT = (0xA9, 0xC4, 0xE0)


@pytest.fixture(scope="module")
def district() -> Iterator[Ledger]:
    """A small simulated district: two dongs, one year."""
    clock = demo_module.DemoClock()
    with Ledger.open(":memory:", clock=clock) as ledger:
        demo_module.generate(ledger, dongs=2, years=1, seed=7, clock=clock)
        yield ledger


@pytest.fixture(scope="module")
def html(district: Ledger) -> str:
    return render_report(district, period=PERIOD, generated_at=GENERATED)


def test_report_is_one_self_contained_printable_page(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="ko">' in html
    assert "<script" not in html.lower()
    assert not re.search(r"\b(src|href)\s*=", html), "the report must not load anything"
    assert not re.search(r"url\((?!#)", html), "no external images or fonts"
    assert set(re.findall(r"https?://[^\s\"'<>)]+", html)) == {"http://www.w3.org/2000/svg"}
    assert "@media print" in html
    assert "@page" in html
    for title in (
        "동별 4대 점검 영역",
        "월별 사례 현황",
        "사례 흐름",
        "민관 자원 연계",
        "종결 사유",
    ):
        assert title in html


def test_charts_are_well_formed_svg_with_titles_and_legends(html: str) -> None:
    charts = re.findall(r'<svg class="chart".*?</svg>', html, flags=re.DOTALL)
    assert len(charts) == 9  # four areas, caseload, funnel, plan days, closures, linkage
    for chart in charts:
        root = ET.fromstring(chart)  # noqa: S314 - our own output, not untrusted input
        ns = {"s": "http://www.w3.org/2000/svg"}
        assert root.find("s:title", ns) is not None
        assert len(root.findall(".//s:rect", ns)) >= 3
        fills = {r.get("fill") for r in root.findall(".//s:rect", ns)}
        # Series differ by pattern, not only by colour: legible in black and white.
        assert fills & {"url(#cl-hatch)", "url(#cl-dots)", "url(#cl-cross)"}
        assert root.findall(".//s:text", ns)
    assert html.count('id="cl-hatch"') == 1


def test_report_shows_the_kpi_figures(district: Ledger, html: str) -> None:
    total = district.kpis(PERIOD)
    by_dong = district.kpis(PERIOD, by="dong")
    for area in ("discoveries", "meetings", "service_links", "service_checks"):
        value = total.value(area)
        assert value
        assert f'<div class="value">{value:,}</div>' in html
        for dong in (g for g in by_dong.groups() if g is not None):
            now, before = by_dong.value(area, dong), by_dong.previous(area, dong)
            assert f"<td>{now:,}</td><td>{before:,}</td>" in html
            assert dong in html
    assert f"{PERIOD} (비교 기간 2022Q3)" in html


def test_report_holds_no_ids_worker_codes_or_personal_data(district: Ledger, html: str) -> None:
    assert not UUID_TEXT.search(html)
    workers = {
        e.event.code for e in district.events() if type(e.event).__name__ == "WorkerRegistered"
    }  # type: ignore[attr-defined]
    assert workers
    for code in workers:
        assert code not in html
    assert "가상인물" not in html  # the demo's fake names


def test_english_labels(district: Ledger) -> None:
    html = render_report(district, period=PERIOD, lang="en", generated_at=GENERATED)
    assert '<html lang="en">' in html
    assert "The four monitoring areas per dong" in html
    assert "Closures by reason" in html
    assert "goal achieved" in html
    with pytest.raises(InvalidInput, match="lang"):
        render_report(district, lang="fr")


def test_report_on_every_backend(ledger: Ledger, tmp_path: Path) -> None:
    scenario_1(ledger)
    assert str(latest_period(ledger)) == "2023"
    path = write_report(ledger, tmp_path / "r.html", district="동두천시", generated_at=GENERATED)
    text = path.read_text(encoding="utf-8")
    assert "동두천시" in text
    assert "중앙동" in text
    assert "2023 (비교 기간 2022)" in text
    assert not UUID_TEXT.search(text)


def test_an_empty_ledger_gets_a_report_that_says_so(memory_ledger: Ledger) -> None:
    html = render_report(memory_ledger, period="2022", generated_at=GENERATED)
    assert "이 기간에 기록된 활동이 없습니다." in html
    assert html.count('<svg class="chart"') == 9


def test_cli_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "ledger.db"
    with Ledger.open(db, master_key=MASTER_KEY) as ledger:
        scenario_1(ledger)
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    code = main(["--db", str(db), "report", "--out", str(tmp_path / "r.html"), "--lang", "en",
                 "--period", "2023-02"])  # fmt: skip
    assert code == 0, err.getvalue()
    assert "r.html" in out.getvalue()
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "2023-02" in text
    assert "compared with 2023-01" in text


# ---------------------------------------------------------------------------
# A real browser draws it


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CASELEDGER_REQUIRE_CHROMIUM") == "1":
            pytest.fail("CASELEDGER_REQUIRE_CHROMIUM=1 but chromium is not on PATH")
        pytest.skip("the drawing test needs Debian's chromium (apt-get install chromium)")
    return found


def screenshot(html: str, folder: Path, name: str) -> Path:
    """Render ``html`` in headless chromium; return the PNG."""
    page = folder / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    png = folder / f"{name}.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                _chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                f"--screenshot={png}", "--window-size=1280,3200", page.as_uri(),
            ],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    return png


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


def ink(png: Path) -> tuple[int, int, int]:
    """Pixels of the chart ink, of the light series colour, and rows holding ink."""
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        counts = {colour: n for n, colour in rgb.getcolors(width * height) or []}
        rows = 0
        for y in range(0, height, 4):
            line = rgb.crop((0, y, width, y + 1)).getcolors(width) or []
            if sum(n for n, c in line if _near(c, INK)) >= 20:
                rows += 1
    solid = sum(n for colour, n in counts.items() if _near(colour, INK))
    light = sum(n for colour, n in counts.items() if _near(colour, LIGHT))
    return solid, light, rows


def test_the_charts_draw_in_a_headless_browser(html: str, tmp_path: Path) -> None:
    drawn = screenshot(html, tmp_path, "report")
    assert drawn.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    without = re.sub(r'<svg class="chart".*?</svg>', "", html, flags=re.DOTALL)
    blank = screenshot(without, tmp_path, "blank")
    solid, light, rows = ink(drawn)
    solid_blank, light_blank, rows_blank = ink(blank)
    # The bars, columns and funnel are drawn in the ink colour and the light series colour;
    # without the charts only headings and borders remain.
    assert solid > solid_blank + 60_000, (solid, solid_blank)
    assert light > light_blank + 10_000, (light, light_blank)
    assert rows > rows_blank + 60, (rows, rows_blank)
