"""The documentation site: it builds, its generated pages match the code, its code runs.

* ``mkdocs build --strict`` succeeds (a broken link, a missing page or a docstring that
  mkdocstrings cannot render fails it);
* every generated reference page (:data:`caseledger._docs.GENERATED`) equals a fresh
  rendering;
* every code block of the tutorial runs, in order, in an empty folder: ``python`` blocks
  in one namespace, ``console`` blocks' ``$ caseledger …`` lines as subprocesses that must
  exit 0; a ``text`` block right after a code block is its expected output, compared as
  doctest compares (``...`` matches anything, runs of whitespace are equal);
* the how-to guides' Python blocks run too, against a ledger with the tutorial's
  scenario, on every backend; blocks marked ``<!-- not run: reason -->`` are compiled
  and have the caseledger names they use checked;
* the configuration page names every ``CASELEDGER_*`` environment variable the code reads,
  and the glossary's code names exist.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import doctest
import importlib
import importlib.util
import inspect
import io
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import caseledger
from caseledger import Ledger
from caseledger._docs import GENERATED
from caseledger.catalogue import VOCABULARIES
from caseledger.events import EVENT_CLASSES
from tests.conftest import MASTER_KEY
from tests.scenarios import KST, kst, scenario_1

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ ]*$",
    re.DOTALL | re.MULTILINE,
)
_MARK = re.compile(r"<!--\s*not run:(?P<reason>[^>]*)-->\s*$")
_OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
#: Pages written with the features they document (their anchors are their own business).
OTHERS_PAGES = frozenset(
    {"domain-model.md", "privacy.md", "integrity.md", "exports.md", "performance.md",
     "reliability.md"}
)  # fmt: skip
_ENVIRONMENT = ("CASELEDGER_DB", "CASELEDGER_MASTER_KEY", "CASELEDGER_MASTER_KEY_FILE",
                "CASELEDGER_POLICY")  # fmt: skip


@dataclass
class Block:
    """A fenced code block of a page, with the output shown after it, if any."""

    page: str
    line: int
    lang: str
    code: str
    skipped: str | None = None
    output: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str) -> list[Block]:
    """The code blocks of ``docs/<page>`` in order; ``text`` blocks attach as output."""
    text = (DOCS / page).read_text(encoding="utf-8")
    found: list[Block] = []
    end = 0
    for match in _FENCE.finditer(text):
        gap = text[end : match.start()]
        end = match.end()
        body = _dedent(match.group("body"), len(match.group("indent")))
        lang = match.group("lang")
        line = text.count("\n", 0, match.start()) + 1
        if lang == "text" and found and not gap.strip() and found[-1].output is None:
            found[-1].output = body
            continue
        mark = _MARK.search(gap.rstrip() + "\n") if gap.strip() else None
        found.append(Block(page, line, lang, body, mark.group("reason").strip() if mark else None))
    return found


def _dedent(body: str, indent: int) -> str:
    return "\n".join(line[indent:] for line in body.splitlines())


def check_output(block: Block, got: str, want: str | None) -> None:
    if want is None:
        return
    checker = doctest.OutputChecker()
    if not checker.check_output(want.rstrip() + "\n", got, _OPTIONS):
        pytest.fail(f"{block.where}: the output differs from the page.\n--- page:\n{want}\n"
                    f"--- got:\n{got}")  # fmt: skip


def run_python(block: Block, namespace: dict[str, Any]) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.code, block.where, "exec"), namespace)  # noqa: S102 - our own docs
    check_output(block, out.getvalue(), block.output)


def console_commands(block: Block) -> list[tuple[str, str | None]]:
    """``(command, expected output or None)`` for each ``$ `` line of a console block."""
    if block.lang == "sh":  # a script: every line is a command, no output shown
        lines = [line for line in block.code.splitlines() if line.strip()]
        return [(line, None) for line in lines if not line.lstrip().startswith("#")]
    commands: list[tuple[str, list[str]]] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
        elif line.strip():
            pytest.fail(f"{block.where}: output before any command: {line!r}")
    return [(cmd, "\n".join(out) if any(s.strip() for s in out) else None) for cmd, out in commands]


def run_console(block: Block, cwd: Path, env: dict[str, str]) -> None:
    for command, want in console_commands(block):
        argv = shlex.split(command)
        if argv[:3] == ["python", "-m", "pip"]:
            continue  # installing: this test runs where caseledger is installed already
        assert argv[0] == "caseledger", f"{block.where}: the docs may only run caseledger"
        result = subprocess.run(
            [sys.executable, "-m", "caseledger", *argv[1:]],
            cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, f"{block.where}: `{command}` failed:\n{result.stderr}"
        check_output(block, result.stdout, want)


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No ledger settings from outside: the docs say where everything is."""
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return {k: v for k, v in os.environ.items() if k not in _ENVIRONMENT}


# ---------------------------------------------------------------------------
# Generated pages and the build


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_pages_match_the_code(name: str) -> None:
    page = (DOCS / name).read_text(encoding="utf-8")
    assert page == GENERATED[name](), f"docs/{name} is stale: run `python -m caseledger._docs`"


def test_the_site_builds_with_mkdocs_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (the docs extra)")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed (the docs extra)")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stdout + result.stderr
    # MkDocs reports a link to a missing heading only as INFO; on our own pages it fails.
    broken = re.findall(r"Doc file '([^']+)' contains a link '([^']+)', but", result.stderr)
    assert [(page, link) for page, link in broken if page not in OTHERS_PAGES] == []
    # Pages left out of `nav` are reported, not refused (others' pages may be in progress).
    listed = re.search(r'not included in the "nav" configuration:\n((?:  - .*\n)+)', result.stderr)
    omitted = re.findall(r"  - (.*)", listed.group(1)) if listed else []
    assert [page for page in omitted if page not in OTHERS_PAGES] == [], "add them to mkdocs.yml"
    assert (tmp_path / "site" / "tutorial" / "index.html").exists()
    api = (tmp_path / "site" / "reference" / "api" / "ledger" / "index.html").read_text("utf-8")
    assert 'id="caseledger.Ledger.close_case"' in api, "mkdocstrings did not render Ledger"
    assert ":class:" not in api, "a docstring role was left unconverted"
    print(f"mkdocs build --strict: {seconds:.1f} s")


# ---------------------------------------------------------------------------
# The tutorial


def test_the_tutorial_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "tutorial"}
    found = blocks("tutorial.md")
    assert {b.lang for b in found} == {"python", "console"}, "tutorial blocks: python, console"
    for block in found:
        assert block.skipped is None, f"{block.where}: every tutorial block must run"
        if block.lang == "python":
            run_python(block, namespace)
        else:
            run_console(block, tmp_path, env)
    # The scenario's end state, as the domain guide states it.
    with Ledger.open(tmp_path / "jungang.db") as ledger:
        open_cases = ledger.caseload()
        assert len(open_cases) == 1
        assert [e.stage.value for e in ledger.caseload(include_closed=True)] == [
            "closed",
            "in_service",
        ]


# ---------------------------------------------------------------------------
# The how-to guides

HOW_TO = [
    "how-to/embed.md",
    "how-to/add-a-projection.md",
    "how-to/evolve-an-event.md",
    "how-to/audit.md",
    "how-to/research.md",
    "how-to/erase-a-household.md",
]


def how_to_namespace(ledger: Ledger) -> dict[str, Any]:
    """What the how-to guides say their examples start from: the tutorial's cases."""
    s = scenario_1(ledger)
    return {
        "__name__": "how_to",
        "ledger": ledger,
        "kst": KST,
        "at": kst,
        "KIM_CASE": s.resolved_case,
        "LEE_CASE": s.medical_case,
        "kim": ledger.case(s.resolved_case).household_id,
        "lee": ledger.case(s.medical_case).household_id,
        "february": s.meeting,
        "link_id": s.medical_link,
    }


def _imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def missing_modules(block: Block) -> list[str]:
    """Top-level modules the block imports that are not installed here."""
    tree = ast.parse(block.code)
    tops = {module.split(".")[0] for module, _ in _imports(tree)}
    return sorted(t for t in tops if importlib.util.find_spec(t) is None)


def _ledger_attributes() -> set[str]:
    # Public attributes set on each instance (ledger.keys, ledger.access …) besides the class's.
    source = inspect.getsource(Ledger.__init__)
    return set(dir(Ledger)) | set(re.findall(r"self\.([a-z]\w*)\s*[:=]", source))


def check_names(block: Block) -> None:
    """The caseledger names a block uses exist: imports, ``ledger.<verb>``, ``caseledger.<x>``."""
    try:
        tree = ast.parse(block.code)
    except SyntaxError as e:
        pytest.fail(f"{block.where}: not valid Python: {e}")
    for module, names in _imports(tree):
        if module.split(".")[0] != "caseledger":
            continue
        imported = importlib.import_module(module)
        for name in names:
            assert hasattr(imported, name), f"{block.where}: {module} has no {name}"
    known = {"ledger": _ledger_attributes(), "caseledger": set(dir(caseledger))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names = known.get(node.value.id)
            if names is not None and not isinstance(node.ctx, ast.Store):
                assert node.attr in names, f"{block.where}: {node.value.id}.{node.attr}?"


def check_console_parses(block: Block) -> None:
    """Every ``$ caseledger …`` line of a guide parses with the command line's parser."""
    from caseledger.cli import build_parser

    for command, _ in console_commands(block):
        argv = shlex.split(command, comments=True)
        if not argv or argv[0] != "caseledger":
            continue
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                build_parser().parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{block.where}: `{command}` does not parse")


def run_page(page: str, namespace: dict[str, Any]) -> list[str]:
    """Run a guide's Python blocks in one namespace; return what was not run, and why."""
    not_run: list[str] = []
    for block in blocks(page):
        if block.lang == "python":
            check_names(block)
            missing = missing_modules(block)
            if block.skipped is not None:
                not_run.append(f"{block.where}: {block.skipped}")
            elif missing:
                not_run.append(f"{block.where}: needs {', '.join(missing)}")
            else:
                run_python(block, namespace)
        elif block.lang in ("console", "sh"):
            check_console_parses(block)
    return not_run


@pytest.mark.parametrize("page", HOW_TO)
def test_a_how_to_guide_runs_as_written(
    page: str, ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    not_run = run_page(page, how_to_namespace(ledger))
    if not_run:
        print("not run:", *not_run, sep="\n  ")


def test_the_postgresql_guide_runs_as_written(
    pg_schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CASELEDGER_DB", pg_schema_url)
    monkeypatch.setenv("CASELEDGER_MASTER_KEY", base64.b64encode(MASTER_KEY).decode())
    not_run = run_page("how-to/postgresql.md", {"__name__": "how_to", "at": kst, "kst": KST})
    if not_run:
        print("not run:", *not_run, sep="\n  ")


# ---------------------------------------------------------------------------
# The configuration page and the glossary


def test_the_configuration_page_names_every_environment_variable() -> None:
    used: set[str] = set()
    for folder in ("src", "tests", "benchmarks", ".ci"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in ("", ".py", ".sh"):
                text = path.read_text(encoding="utf-8", errors="replace")
                used |= set(re.findall(r"\bCASELEDGER_[A-Z0-9_]+\b", text))
    page = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(CASELEDGER_[A-Z0-9_]+)`", page))
    assert {"CASELEDGER_DB", "CASELEDGER_MASTER_KEY", "CASELEDGER_POLICY"} <= used
    assert used - documented == set(), "add them to docs/reference/configuration.md"
    assert documented - used == set(), "the code no longer reads these"


def _known_code_names() -> set[str]:
    from caseledger.cli import SUBCOMMANDS
    from caseledger.export import export

    names = _ledger_attributes() | set(caseledger.__all__)
    names |= {cls.__name__ for cls in EVENT_CLASSES}
    for vocabulary in VOCABULARIES:
        names.add(vocabulary.__name__)
        names |= {f"{vocabulary.__name__}.{member.name}" for member in vocabulary}
    names |= {f"caseledger {s.name}" for s in SUBCOMMANDS}
    names |= {f"{p}=" for p in inspect.signature(export).parameters}
    names |= set(caseledger.commands.DiscoverHousehold.model_fields)
    return names


def test_the_glossary_names_only_what_exists() -> None:
    import caseledger.commands  # noqa: F401 - for _known_code_names

    known = _known_code_names()
    rows = [
        line for line in (DOCS / "glossary.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and not line.startswith("| 한국어")
    ]  # fmt: skip
    assert len(rows) >= 50
    korean = set()
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert len(cells) == 4, f"glossary row with {len(cells)} cells: {row}"
        korean.add(cells[0])
        for name in re.findall(r"`([^`]+)`", cells[2]):
            key = name.split("=")[0] + "=" if "=" in name else name
            assert key in known, f"the glossary names {name!r}, which caseledger does not have"
    for term in ("통합사례관리", "희망복지지원단", "사례회의", "접속기록", "파기", "가명처리"):
        assert term in korean


def test_the_home_page_and_explanation_examples_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    pages = ["index.md", *(f"explanation/{p.name}" for p in (DOCS / "explanation").glob("*.md"))]
    for page in sorted(pages):
        assert run_page(page, {"__name__": "explanation"}) == [], f"{page}: run every example"
