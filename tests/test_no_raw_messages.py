"""No page shows an API error's raw ``message`` (the server's English developer text) to its user.

The API's errors carry a stable ``code`` and ``field``; the pages render their own zh / en words from
them through ``NY.errorText`` (nongyun.js), which falls back to the message only for a code the page
does not know. This test reads every script and template and finds each place that reads a
``message`` — ``x.message``, ``x["message"]``, ``{ message } =`` — and accepts only:

- the definitions of ``errorText`` and ``ApiError`` themselves (where the fallback lives);
- the else branch of ``err instanceof NY.ApiError ? ... : ...`` (a network failure or a bug in the
  page, which has no code: the browser's own words, never the API's);
- a language pick of a server that answers in both languages (``lang === "en" ? e.message_en : e.message``);
- a short list of reviewed reads below that are not API errors at all, each with its reason.

Views count too: a page rendered with ``str(exc)`` puts the exception's English text on it.
The checker is itself tested on deliberately bad snippets, so it cannot pass by finding nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[1] / "service" / "web"
STATIC = WEB / "static"
TEMPLATES = WEB / "templates"

# (file name, the code on the line, why it is not an API error's message)
REVIEWED: list[tuple[str, str, str]] = [
    ("alerts.js", "cells[0].title = a.message;",
     "an alert's own sentence from its rule, on hover beside the kind in the page's language"),
]

READ = re.compile(r"""\.message(?:_en)?\b|\[\s*["']message(?:_en)?["']\s*\]|\{[^{}=]*\bmessage\b[^{}=]*\}\s*=""")
GUARD = re.compile(r"instanceof\s+(?:NY\.)?ApiError\s*\?")
LANG_PICK = re.compile(r"\?\s*\w+\.message_en\s*:\s*\w+\.message\b")
OWN = re.compile(r"function\s+errorText\s*\(|class\s+ApiError\b")
RAW_TO_PAGE = re.compile(r"\w*_?page\([^()]*\bstr\((?:exc|err|error|e)\)")


def strip_comments(source: str) -> str:
    """The script with its comments blanked out (lengths kept, so offsets and lines still match); quotes
    and template literals are followed so a ``//`` inside a string is not taken for a comment."""
    out = list(source)
    i, n = 0, len(source)
    stack: list[str] = []  # "`" inside a template literal; "{" inside its ${...}
    while i < n:
        c = source[i]
        in_template = bool(stack) and stack[-1] == "`"
        if in_template:
            if c == "\\":
                i += 2
                continue
            if c == "`":
                stack.pop()
            elif source.startswith("${", i):
                stack.append("{")
                i += 2
                continue
            i += 1
            continue
        if c in "\"'":
            j = i + 1
            while j < n and source[j] != c and source[j] != "\n":
                j += 2 if source[j] == "\\" else 1
            i = j + 1
            continue
        if c == "`":
            stack.append("`")
        elif c == "{" and stack:
            stack.append("{")
        elif c == "}" and stack and stack[-1] == "{":
            stack.pop()
        elif source.startswith("//", i):
            j = source.find("\n", i)
            j = n if j < 0 else j
            out[i:j] = " " * (j - i)
            i = j
            continue
        elif source.startswith("/*", i):
            j = source.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out[i:j] = [ch if ch == "\n" else " " for ch in source[i:j]]
            i = j
            continue
        i += 1
    return "".join(out)


def _block_after(code: str, start: int) -> tuple[int, int]:
    """The span of the ``{...}`` block that follows ``start``."""
    open_at = code.index("{", start)
    depth = 0
    for j in range(open_at, len(code)):
        depth += {"{": 1, "}": -1}.get(code[j], 0)
        if depth == 0:
            return open_at, j
    return open_at, len(code)


def raw_reads(name: str, source: str) -> list[tuple[int, str]]:
    """Every unaccepted read of a message in one script: (line number, the line)."""
    code = strip_comments(source)
    own = [_block_after(code, m.end()) for m in OWN.finditer(code)]
    lines = source.splitlines()
    reviewed = {line for file, line, _ in REVIEWED if file == name}
    found = []
    for m in READ.finditer(code):
        at = m.start()
        if any(a <= at <= b for a, b in own):
            continue
        statement = code[max(code.rfind(";", 0, at), code.rfind("\n\n", 0, at), at - 400, 0):at + 80]
        before = statement[: statement.find(m.group(0))] if m.group(0) in statement else statement
        guard = GUARD.search(before)
        if guard and ":" in before[guard.end():]:
            continue
        if LANG_PICK.search(statement):
            continue
        number = code.count("\n", 0, at) + 1
        line = lines[number - 1].strip()
        if any(line.startswith(r) for r in reviewed):
            continue
        found.append((number, line))
    return found


TEMPLATE_EXPR = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
TEXT_TABLE = re.compile(r"\b(?:t|rt|T)\.message\b")


def raw_in_template(source: str) -> list[str]:
    """Template expressions that print a message that is not a key of the page's own text table."""
    bad = []
    for m in TEMPLATE_EXPR.finditer(source):
        expr = m.group(1) or m.group(2) or ""
        if re.search(r"\bmessage\b", TEXT_TABLE.sub("", expr)):
            bad.append(m.group(0).strip())
    return bad


def raw_in_views(source: str) -> list[str]:
    return [m.group(0) for m in RAW_TO_PAGE.finditer(source)]


# -- the real files -----------------------------------------------------------------------------


SCRIPTS = sorted(p for p in STATIC.glob("*.js"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_no_script_puts_a_raw_api_message_into_the_page(path: Path) -> None:
    assert raw_reads(path.name, path.read_text(encoding="utf-8")) == []


def test_the_scripts_are_all_read_and_the_reviewed_reads_still_exist() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"nongyun.js", "village.js", "alerts.js", "import.js", "review.js"} <= names
    for file, line, _why in REVIEWED:  # a stale entry would excuse nothing: it must go
        assert line in (STATIC / file).read_text(encoding="utf-8"), (file, line)


def test_the_error_text_helper_falls_back_to_the_message_only_for_an_unknown_code() -> None:
    source = strip_comments((STATIC / "nongyun.js").read_text(encoding="utf-8"))
    start, end = _block_after(source, source.index("function errorText"))
    body = source[start:end]
    assert "T[`err_${err.code}`]" in body and "if (!text) return err.message" in body


def test_no_template_prints_a_message() -> None:
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) > 10
    found = {str(p.relative_to(TEMPLATES)): raw_in_template(p.read_text(encoding="utf-8")) for p in templates}
    assert {k: v for k, v in found.items() if v} == {}


def test_no_page_view_renders_an_exceptions_own_text() -> None:
    views = [WEB / "auth.py", *sorted((WEB / "pages").glob("*.py"))]
    found = {p.name: raw_in_views(p.read_text(encoding="utf-8")) for p in views}
    assert {k: v for k, v in found.items() if v} == {}


# -- the checker itself -------------------------------------------------------------------------


BAD_SCRIPTS = [
    "el.textContent = err.message;",
    "slot.textContent = `${T.load_failed}: ${err.message}`;",
    "return [name, err.message || `HTTP ${err.status}`];",
    'note.innerHTML = answer.error["message"];',
    "const { message } = err.body.error;\nbox.textContent = message;",
    "put(field(root, 'x'), e.message_en);",
    "// a comment first\nif (ok) { tip.title = failure.message; }",
]


@pytest.mark.parametrize("snippet", BAD_SCRIPTS)
def test_the_checker_finds_a_raw_message_in_a_script(tmp_path: Path, snippet: str) -> None:
    bad = tmp_path / "bad.js"
    bad.write_text(f'"use strict";\n(() => {{\n{snippet}\n}})();\n', encoding="utf-8")
    found = raw_reads(bad.name, bad.read_text(encoding="utf-8"))
    assert found and all(n >= 3 for n, _ in found), found


GOOD_SCRIPTS = [
    "slot.textContent = err instanceof NY.ApiError ? NY.errorText(err) : `${T.load_failed}: ${err.message}`;",
    "const words = page.lang === \"en\" ? e.message_en : e.message;",
    "// err.message would be raw here\nslot.textContent = NY.errorText(err);",
    "const url = \"http://x//y\"; el.textContent = NY.errorText(err); /* .message */",
    "recordError({ field: \"reason\", message: T.rec_reason_needed });",
]


@pytest.mark.parametrize("snippet", GOOD_SCRIPTS)
def test_the_checker_accepts_the_page_language_ways(tmp_path: Path, snippet: str) -> None:
    good = tmp_path / "good.js"
    good.write_text(f'"use strict";\n{snippet}\n', encoding="utf-8")
    assert raw_reads(good.name, good.read_text(encoding="utf-8")) == []


def test_the_checker_finds_a_raw_message_in_a_template_and_a_view(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<p class="error">{{ error.message }}</p><th>{{ rt.message }}</th>'
                    "{% if problem.message %}x{% endif %}", encoding="utf-8")
    assert raw_in_template(page.read_text(encoding="utf-8")) == ["{{ error.message }}", "{% if problem.message %}"]
    view = tmp_path / "bad.py"
    view.write_text("    except BadInput as exc:\n        return _page(who.scope, 400, str(exc))\n", encoding="utf-8")
    assert raw_in_views(view.read_text(encoding="utf-8")) == ["_page(who.scope, 400, str(exc)"]
    assert raw_in_views("return _page(who.scope, 400, TEXT[key][_lang()])") == []
