"""The visual report for a district's performance-sharing meeting (성과공유회의).

:func:`render_report` makes one self-contained HTML page (inline SVG charts and CSS,
no script, nothing fetched over the network; it prints on A4) from the monitoring
figures of :meth:`caseledger.Ledger.kpis`, for a period against the one before it:

1. the four monitoring areas per dong (seed 002): new case discovery, case meetings
   held, service linkage and service checks, with a table of the figures;
2. the caseload over time: open cases at each month's end, by stage;
3. how cases flow through the stages (a funnel from discovery to closure), the days
   from intake to the first service plan per dong against the deadline, and closures
   by reason;
4. public and private resource linkage (민관 자원 연계) per dong.

Labels are Korean (``lang="ko"``) or English (``lang="en"``). The report holds counts
only, never personal data, and no worker codes::

    html = render_report(ledger, period="2022", district="동두천시")
    Path("report.html").write_text(html, encoding="utf-8")
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from caseledger import _charts as charts
from caseledger._version import __version__
from caseledger.codec import decode_fields
from caseledger.errors import InvalidInput
from caseledger.projections.due import add_months
from caseledger.projections.kpis import KpiReport
from caseledger.projections.periods import Period
from caseledger.values import ClosureReason, Stage

if TYPE_CHECKING:
    from caseledger.application import Ledger
    from caseledger.cli import Context

__all__ = [
    "LANGUAGES",
    "REPORT_DESCRIPTION",
    "latest_period",
    "render_report",
    "report_arguments",
    "run_report",
    "write_report",
]

#: Report languages.
LANGUAGES = ("ko", "en")

_TEXT: dict[str, dict[str, str]] = {
    "ko": {
        "title": "통합사례관리 성과공유 보고서",
        "all": "전체 지역",
        "period": "기간",
        "compared": "비교 기간",
        "current": "이번 기간",
        "previous": "이전 기간",
        "generated": "작성",
        "district_level": "구 단위",
        "summary": "요약",
        "areas": "동별 4대 점검 영역",
        "areas_note": "신규 발굴, 사례회의 개최, 서비스 연계, 서비스 점검 건수 "
        "(이번 기간과 이전 기간)",
        "discoveries": "신규 발굴",
        "meetings": "사례회의 개최",
        "service_links": "서비스 연계",
        "service_checks": "서비스 점검",
        "count": "건수",
        "dong": "동",
        "change": "증감",
        "caseload": "월별 사례 현황",
        "earlier": "이전",
        "caseload_note": "매월 말 진행 중인 사례 수 (단계별)",
        "open_cases": "사례 수",
        "stage_intake": "접수·사정",
        "stage_selected": "선정·계획",
        "stage_service": "서비스 제공·연계",
        "flow": "사례 흐름",
        "flow_note": "기간 중 단계별 건수와 앞 단계 대비 비율 (막대: 이번 기간, 빗금: 이전 기간)",
        "consultations": "초기상담",
        "cases_opened": "접수",
        "selections": "선정 (사례관리·서비스연계)",
        "plans": "서비스 계획 수립",
        "closures": "종결",
        "plan_days": "접수부터 서비스 계획까지 (중앙값, 일)",
        "plan_days_note": "동별 중앙값; 점선은 기한",
        "days": "일",
        "deadline": "기한 {days}일",
        "closure_reasons": "종결 사유",
        "linkage": "민관 자원 연계",
        "linkage_note": "동별 서비스 연계 건수: 공공과 민간 (괄호: 공공 비율)",
        "public": "공공",
        "private": "민간",
        "open_caseload": "진행 중 사례 (기간 말)",
        "on_time": "계획 기한 준수율",
        "median_days": "계획까지 중앙값 (일)",
        "public_share": "공공 연계 비율",
        "footer": "개인정보와 담당자 정보는 포함되지 않습니다. 건수는 발생일 기준입니다.",
        "no_data": "이 기간에 기록된 활동이 없습니다.",
    },
    "en": {
        "title": "Integrated case management: performance report",
        "all": "all districts",
        "period": "Period",
        "compared": "compared with",
        "current": "this period",
        "previous": "previous period",
        "generated": "Generated",
        "district_level": "district level",
        "summary": "Summary",
        "areas": "The four monitoring areas per dong",
        "areas_note": "New case discovery, case meetings held, service linkage and service "
        "checks (this period and the previous one)",
        "discoveries": "Discovery",
        "meetings": "Case meetings",
        "service_links": "Service linkage",
        "service_checks": "Service checks",
        "count": "count",
        "dong": "Dong",
        "change": "change",
        "caseload": "Caseload over time",
        "earlier": "before",
        "caseload_note": "Open cases at each month's end, by stage",
        "open_cases": "cases",
        "stage_intake": "intake and assessment",
        "stage_selected": "selection and plan",
        "stage_service": "in service or linked",
        "flow": "Case flow",
        "flow_note": "Counts in the period and the share of the step before (bars: this "
        "period; hatched: previous period)",
        "consultations": "Consultations",
        "cases_opened": "Intake",
        "selections": "Selected (case-managed, linkage)",
        "plans": "First service plans",
        "closures": "Closures",
        "plan_days": "Intake to service plan (median days)",
        "plan_days_note": "Median per dong; the dashed line is the deadline",
        "days": "days",
        "deadline": "deadline {days} days",
        "closure_reasons": "Closures by reason",
        "linkage": "Public and private resource linkage",
        "linkage_note": "Service links per dong: public and private (in brackets: public share)",
        "public": "public",
        "private": "private",
        "open_caseload": "Open cases (period end)",
        "on_time": "Plans within deadline",
        "median_days": "Median days to plan",
        "public_share": "Public share of links",
        "footer": "No personal data and no worker data. Counts are by the date things happened.",
        "no_data": "No activity was recorded in this period.",
    },
}

_AREAS = ("discoveries", "meetings", "service_links", "service_checks")
_STAGE_GROUPS = {
    "stage_intake": (Stage.OPENED, Stage.ASSESSED),
    "stage_selected": (Stage.SELECTED, Stage.LINKAGE_SELECTED, Stage.PLANNED, Stage.NOT_SELECTED),
    "stage_service": (Stage.IN_SERVICE, Stage.LINKED),
}

_CSS = """
:root { --ink: #1f3b5c; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans KR", "Nanum Gothic", NanumGothic, "Malgun Gothic",
       "Apple SD Gothic Neo", "Noto Sans CJK KR", sans-serif; color: #1a1a1a;
       margin: 0 auto; max-width: 1120px; padding: 24px 28px; line-height: 1.45;
       font-size: 14px; background: #fff; }
header { border-bottom: 3px solid var(--ink); padding-bottom: 10px; margin-bottom: 18px; }
h1 { font-size: 24px; margin: 0 0 6px; color: var(--ink); }
h2 { font-size: 18px; margin: 26px 0 4px; color: var(--ink);
     border-left: 6px solid var(--ink); padding-left: 8px; }
h3 { font-size: 14px; margin: 10px 0 2px; }
.meta { color: #444; font-size: 13px; }
.note { color: #555; font-size: 12px; margin: 0 0 8px; }
section { break-inside: avoid; page-break-inside: avoid; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 10px 26px; }
.figure { break-inside: avoid; page-break-inside: avoid; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; }
.card { border: 1.5px solid var(--ink); border-radius: 6px; padding: 8px 10px; }
.card .label { font-size: 12px; color: #333; }
.card .value { font-size: 22px; font-weight: 700; color: var(--ink); }
.card .prev { font-size: 12px; color: #333; }
table { border-collapse: collapse; width: 100%; font-size: 12px; margin-top: 8px; }
th, td { border: 1px solid #9aa4b1; padding: 3px 6px; text-align: right; }
th { background: #e8edf3; }
td:first-child, th:first-child { text-align: left; }
.up::before { content: "▲ "; } .down::before { content: "▼ "; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg.chart text { font-family: inherit; }
footer { margin-top: 26px; border-top: 1px solid #999; padding-top: 6px; font-size: 11px;
         color: #444; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 12px; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .cards { grid-template-columns: repeat(4, 1fr); }
  a { color: inherit; text-decoration: none; }
}
"""


@dataclass(frozen=True)
class _Data:
    period: Period
    previous: Period
    by_dong: KpiReport
    total: KpiReport
    months: list[Period]
    monthly: list[KpiReport]


def latest_period(ledger: Ledger) -> Period:
    """The calendar year of the latest recorded event (the current year for an empty log)."""
    last = ledger.store.max_position()
    if last == 0:
        return Period("year", date(datetime.now(UTC).year, 1, 1))
    record = next(iter(ledger.records(last - 1)))
    _, fields = decode_fields(record.topic, record.state)
    occurred: datetime = fields["occurred_at"]
    return Period("year", date(occurred.astimezone(ledger.projections.tz).year, 1, 1))


def _gather(ledger: Ledger, period: Period, district: str | None) -> _Data:
    previous = period.previous()
    by_dong = ledger.kpis(str(period), by="dong", district=district)
    total = ledger.kpis(str(period), district=district)
    # Months from the previous period's start to this one's end (at least a year).
    span = max(period.months * 2, 12)
    first = add_months(period.end, -span)
    months = [Period("month", add_months(first, i)) for i in range(span)]
    monthly = [ledger.kpis(str(m), district=district, compare_previous=False) for m in months]
    return _Data(period, previous, by_dong, total, months, monthly)


def _label(text: dict[str, str], group: str | None) -> str:
    return group if group is not None else text["district_level"]


def _groups(report: KpiReport) -> list[str | None]:
    groups = report.groups()
    named = sorted(g for g in groups if g is not None)
    return [*named, None] if None in groups else list(named)


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _change(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return "–"
    diff = now - before
    if diff == 0:
        return "0"
    cls = "up" if diff > 0 else "down"
    share = f" ({diff / before:+.0%})" if before else ""
    return f'<span class="{cls}">{_num(abs(diff))}{share}</span>'


def _cards(text: dict[str, str], data: _Data) -> str:
    t = data.total
    cards = []
    for area in _AREAS:
        now, before = t.value(area), t.previous(area)
        cards.append(
            f'<div class="card"><div class="label">{escape(text[area])}</div>'
            f'<div class="value">{_num(now)}</div>'
            f'<div class="prev">{escape(text["previous"])} {_num(before)} · '
            f"{_change(now, before)}</div></div>"
        )
    public = t.value("service_links.sector.public") or 0
    links = t.value("service_links") or 0
    prev_public = t.previous("service_links.sector.public") or 0
    prev_links = t.previous("service_links") or 0
    share_now = f"{public / links:.0%}" if links else "–"
    share_before = f"{prev_public / prev_links:.0%}" if prev_links else "–"
    on_time = t.value("intake_to_plan.share_on_time")
    on_time_before = t.previous("intake_to_plan.share_on_time")
    extra = [
        (text["open_caseload"], _num(t.value("open_caseload")), _num(t.previous("open_caseload"))),
        (
            text["median_days"],
            _num(t.value("intake_to_plan.median_days")),
            _num(t.previous("intake_to_plan.median_days")),
        ),
        (
            text["on_time"],
            f"{on_time:.0%}" if on_time is not None else "–",
            f"{on_time_before:.0%}" if on_time_before is not None else "–",
        ),
        (text["public_share"], share_now, share_before),
    ]
    for label, now_text, before_text in extra:
        cards.append(
            f'<div class="card"><div class="label">{escape(label)}</div>'
            f'<div class="value">{now_text}</div>'
            f'<div class="prev">{escape(text["previous"])} {before_text}</div></div>'
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def _series(
    text: dict[str, str], report: KpiReport, metric: str, groups: Sequence[str | None]
) -> list[charts.Series]:
    return [
        charts.Series(text["current"], [report.value(metric, g) for g in groups], "solid"),
        charts.Series(text["previous"], [report.previous(metric, g) for g in groups], "hatch"),
    ]


def _areas(text: dict[str, str], data: _Data) -> str:
    report = data.by_dong
    figures = []
    for area in _AREAS:
        groups = [
            g
            for g in _groups(report)
            if g is not None or (report.value(area, g) or report.previous(area, g))
        ]
        svg = charts.grouped_bars(
            [_label(text, g) for g in groups],
            _series(text, report, area, groups),
            title=text[area],
            axis_label=text["count"],
            width=520,
        )
        figures.append(f'<div class="figure"><h3>{escape(text[area])}</h3>{svg}</div>')
    rows = []
    for g in _groups(report):
        cells = "".join(
            f"<td>{_num(report.value(a, g))}</td><td>{_num(report.previous(a, g))}</td>"
            f"<td>{_change(report.value(a, g), report.previous(a, g))}</td>"
            for a in _AREAS
        )
        rows.append(f"<tr><td>{escape(_label(text, g))}</td>{cells}</tr>")
    head = "".join(f'<th colspan="3">{escape(text[a])}</th>' for a in _AREAS)
    sub = "".join(
        f"<th>{escape(text['current'])}</th><th>{escape(text['previous'])}</th>"
        f"<th>{escape(text['change'])}</th>"
        for _ in _AREAS
    )
    table = (
        f'<table><thead><tr><th rowspan="2">{escape(text["dong"])}</th>{head}</tr>'
        f"<tr>{sub}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return (
        f'<section><h2>{escape(text["areas"])}</h2><p class="note">{escape(text["areas_note"])}'
        f'</p><div class="grid">{"".join(figures)}</div>{table}</section>'
    )


def _month_label(month: Period, lang: str) -> str:
    if month.start.month == 1 or lang == "en":
        return f"{month.start:%y.%m}" if lang == "ko" else f"{month.start:%b %y}"
    return f"{month.start.month}월"


def _caseload(text: dict[str, str], data: _Data, lang: str) -> str:
    series = []
    for key, style in zip(_STAGE_GROUPS, ("light", "hatch", "solid"), strict=True):
        values: list[float | None] = []
        for report in data.monthly:
            values.append(
                sum(report.value(f"open_caseload.stage.{s.value}") or 0 for s in _STAGE_GROUPS[key])
            )
        series.append(charts.Series(text[key], values, style))
    divider = next((i for i, m in enumerate(data.months) if m.start >= data.period.start), None)
    svg = charts.stacked_columns(
        [_month_label(m, lang) for m in data.months],
        series,
        title=text["caseload"],
        axis_label=text["open_cases"],
        width=1060,
        height=280,
        divider=divider,
        divider_labels=(f"← {text['earlier']}", f"{data.period} →"),
    )
    return (
        f"<section><h2>{escape(text['caseload'])}</h2>"
        f'<p class="note">{escape(text["caseload_note"])}</p>{svg}</section>'
    )


def _flow(text: dict[str, str], data: _Data, lang: str, plan_days: int) -> str:
    t = data.total
    steps = []
    for key, metric in (
        ("discoveries", "discoveries"),
        ("consultations", "consultations"),
        ("cases_opened", "cases_opened"),
        ("selections", "selections"),
        ("plans", "intake_to_plan.count"),
    ):
        steps.append((text[key], float(t.value(metric) or 0), _float(t.previous(metric))))
    funnel = charts.funnel(
        steps,
        title=text["flow"],
        current_label=text["current"],
        previous_label=text["previous"],
        width=1060,
    )
    report = data.by_dong
    groups = [g for g in _groups(report) if g is not None]
    days = charts.grouped_bars(
        groups,
        _series(text, report, "intake_to_plan.median_days", groups),
        title=text["plan_days"],
        axis_label=text["days"],
        width=520,
        reference=(plan_days, text["deadline"].format(days=plan_days)),
    )
    reasons = [
        r
        for r in ClosureReason
        if t.value(f"closures.reason.{r.value}") or t.previous(f"closures.reason.{r.value}")
    ]
    closures = charts.grouped_bars(
        [r.label(lang) for r in reasons],
        [
            charts.Series(
                text["current"], [t.value(f"closures.reason.{r.value}") for r in reasons], "solid"
            ),
            charts.Series(
                text["previous"],
                [t.previous(f"closures.reason.{r.value}") for r in reasons],
                "hatch",
            ),
        ],
        title=text["closure_reasons"],
        axis_label=text["count"],
        width=520,
    )
    return (
        f'<section><h2>{escape(text["flow"])}</h2><p class="note">{escape(text["flow_note"])}'
        f'</p>{funnel}<div class="grid"><div class="figure"><h3>{escape(text["plan_days"])}'
        f'</h3><p class="note">{escape(text["plan_days_note"])}</p>{days}</div>'
        f'<div class="figure"><h3>{escape(text["closure_reasons"])}</h3>{closures}</div>'
        "</div></section>"
    )


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _linkage(text: dict[str, str], data: _Data) -> str:
    report = data.by_dong
    groups = [g for g in _groups(report) if g is not None or report.value("service_links", g)]
    svg = charts.stacked_bars(
        [_label(text, g) for g in groups],
        [
            charts.Series(
                text["public"],
                [report.value("service_links.sector.public", g) for g in groups],
                "solid",
            ),
            charts.Series(
                text["private"],
                [report.value("service_links.sector.private", g) for g in groups],
                "hatch",
            ),
        ],
        title=text["linkage"],
        axis_label=text["count"],
        width=1060,
    )
    return (
        f"<section><h2>{escape(text['linkage'])}</h2>"
        f'<p class="note">{escape(text["linkage_note"])}</p>{svg}</section>'
    )


def render_report(
    ledger: Ledger,
    *,
    period: str | Period | None = None,
    district: str | None = None,
    lang: str = "ko",
    generated_at: datetime | None = None,
) -> str:
    """The report as one HTML document (see the module docstring).

    ``period`` is a year (default: the year of the latest event), quarter or month;
    ``district`` limits it to one district (default: everything in the ledger).
    """
    if lang not in LANGUAGES:
        msg = f"lang: {lang!r} is not one of {', '.join(LANGUAGES)}"
        raise InvalidInput(msg, [("lang", "unknown language")])
    text = _TEXT[lang]
    found = (
        period
        if isinstance(period, Period)
        else Period.parse(period)
        if period is not None
        else latest_period(ledger)
    )
    data = _gather(ledger, found, district)
    stamp = (generated_at or datetime.now(UTC)).astimezone(ledger.projections.tz)
    place = district or text["all"]
    title = f"{text['title']} · {place} · {found}"
    body: list[str] = []
    body.append(
        f"<header><h1>{escape(text['title'])}</h1><div class='meta'>"
        f"<strong>{escape(place)}</strong> · {escape(text['period'])} {found} "
        f"({escape(text['compared'])} {data.previous}) · {escape(text['generated'])} "
        f"{stamp:%Y-%m-%d %H:%M}</div></header>"
    )
    body.append(f"<section><h2>{escape(text['summary'])}</h2>{_cards(text, data)}</section>")
    if not any(data.total.value(a) for a in _AREAS):
        body.append(f"<p class='note'>{escape(text['no_data'])}</p>")
    body.append(_areas(text, data))
    body.append(_caseload(text, data, lang))
    body.append(_flow(text, data, lang, ledger.projections.deadlines.plan_days))
    body.append(_linkage(text, data))
    body.append(f"<footer>{escape(text['footer'])} caseledger {escape(__version__)}</footer>")
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"{charts.PATTERN_DEFS}{''.join(body)}</body></html>\n"
    )


def write_report(
    ledger: Ledger,
    out: str | Path,
    *,
    period: str | Period | None = None,
    district: str | None = None,
    lang: str = "ko",
    generated_at: datetime | None = None,
) -> Path:
    """Render the report (see :func:`render_report`) and write it to the file ``out``."""
    path = Path(out)
    if path.is_dir():
        msg = f"out: {path} is a directory; give the HTML file to write"
        raise InvalidInput(msg, [("out", "is a directory")])
    html = render_report(
        ledger, period=period, district=district, lang=lang, generated_at=generated_at
    )
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as e:
        msg = f"out: cannot write {path}: {e.strerror or e}"
        raise InvalidInput(msg, [("out", "cannot be written")]) from None
    return path


# ---------------------------------------------------------------------------
# The command line: ``caseledger report``

REPORT_DESCRIPTION = (
    "Writes one self-contained HTML page (inline SVG charts, no script, nothing fetched; "
    "prints on A4) for a district's performance-sharing meeting: per dong the four "
    "monitoring areas (discovery, meetings, service linkage, service checks) against the "
    "previous period, the caseload over time, the flow of cases through the stages, days "
    "from intake to plan, closures by reason, and public and private resource linkage."
)


def report_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``caseledger report``."""
    parser.add_argument("--out", required=True, metavar="PATH", help="the HTML file to write")
    parser.add_argument(
        "--period",
        metavar="PERIOD",
        help="2022, 2022Q1 or 2022-02 (default: the year of the latest event)",
    )
    parser.add_argument("--district", help="one district (default: the whole ledger)")
    parser.add_argument("--lang", choices=LANGUAGES, default="ko", help="labels (ko)")


def run_report(ctx: Context) -> int:
    """Run ``caseledger report``."""
    args = ctx.args
    path = write_report(
        ctx.ledger(), args.out, period=args.period, district=args.district, lang=args.lang
    )
    ctx.record({"file": str(path), "bytes": path.stat().st_size})
    return 0
