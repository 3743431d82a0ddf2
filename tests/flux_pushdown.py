"""A model of what InfluxDB's storage engine does for a Flux query: which calls it takes over.

InfluxDB 2's planner (flux ``stdlib/influxdata/influxdb`` rules, and "Optimize Flux queries" in
InfluxDB's docs) turns the start of a query into one storage read: ``from |> range``, then
``filter`` calls whose predicate is a tree of ``and`` / ``or`` over ``r.<tag> ==|!=|=~|!~ <value>``
(``_measurement`` and ``_field`` count as tags; ``r._value`` may also use ``<``, ``<=``, ``>``,
``>=``); a filter is split at its top-level ``and`` so the pushable half is pushed and the rest
runs in memory, after which nothing else is pushed. Directly on that chain, ``last()`` /
``first()``, ``aggregateWindow`` with a pushable aggregate, or ``group() |> <aggregate>()`` run in
storage too — but a window aggregate only in UTC: with ``location`` naming another zone InfluxDB
2.7 aggregates in the query engine, on the raw points of the pushed filter (influxdb #24293).
A ``from()`` reached through a function (``data = () => from(...)``) is a chain at
each call site; one stored in a plain variable and used twice is not pushed at all.

The fake InfluxDB uses this to count the points a query makes storage hand to the query engine,
which is what a real server's cost follows; tests read the same chains to check each template's
shape. It parses the templates of ``service/store/flux.py``, not Flux at large.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

TAG_OPS = ("==", "!=", "=~", "!~")
VALUE_OPS = ("==", "!=", "<=", ">=", "<", ">")
PUSHED_SELECTORS = ("last", "first")
PUSHED_AGGREGATES = ("count", "sum", "min", "max", "mean", "first", "last")
_CALL = re.compile(r"\s*(\|>\s*)?([A-Za-z_][\w.]*)\(")


@dataclass(frozen=True)
class Call:
    name: str
    args: str


def _close(text: str, i: int) -> int:
    """Index just past the parenthesis that closes the one opened before ``i``."""
    depth = 1
    while depth:
        ch = text[i]
        if ch == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        i += 1
    return i


def _chain_at(text: str, i: int) -> list[Call]:
    """The ``a(...) |> b(...) |> ...`` pipeline that starts at ``i``."""
    calls: list[Call] = []
    while True:
        m = _CALL.match(text, i)
        if m is None or (calls and not m.group(1)):
            return calls
        end = _close(text, m.end())
        calls.append(Call(m.group(2), text[m.end():end - 1]))
        i = end


def _functions(text: str) -> dict[str, tuple[list[str], str]]:
    """``name = (params) => body`` definitions at the start of a line: name → (params, body)."""
    found: dict[str, tuple[list[str], str]] = {}
    for m in re.finditer(r"^(\w+) = \(([^)]*)\) =>\s*", text, re.M):
        params = [p.strip() for p in m.group(2).split(",") if p.strip()]
        body = _chain_at(text, m.end())
        found[m.group(1)] = (params, " |> ".join(f"{c.name}({c.args})" for c in body))
    return found


def chains(text: str) -> list[list[Call]]:
    """Every storage read the query makes: one per ``from()``, and one per call of a function
    whose body reaches ``from()``, with that call's continuation after the body."""
    funcs = _functions(text)
    out: list[list[Call]] = []
    statements = [m.start() for m in re.finditer(r"^(?!\w+ = \()(?=\S)(?!import )", text, re.M)]

    def expand(calls: list[Call], args: dict[str, str]) -> Iterable[list[Call]]:
        if not calls:
            return
        head = calls[0]
        if head.name == "from":
            yield calls
        elif head.name in funcs:
            params, body = funcs[head.name]
            given = dict(re.findall(r"(\w+):\s*([^,]+)", head.args))
            for name in params:
                body = re.sub(rf"\b{name}\b(?!\s*:)", given.get(name, name), body)
            for inner in expand(_chain_at(body, 0), given):
                yield inner + calls[1:]
        for call in calls:  # union(tables: [part(...), ...]) and the like
            for m in re.finditer(r"\b(\w+)\(", call.args):
                if m.group(1) in funcs:
                    yield from expand(_chain_at(call.args, m.start()), {})

    for start in statements:
        out.extend(expand(_chain_at(text, start), {}))
    return out


# -- predicates -------------------------------------------------------------------------------

Predicate = Callable[[Any, dict[str, Any]], bool]  # (row, params) → matches


class _Parser:
    """``or`` / ``and`` / parentheses over comparisons; anything else is an opaque, unpushable atom."""

    TOKEN = re.compile(r'\s*(\(|\)|\band\b|\bor\b|"(?:[^"\\]|\\.)*"|/(?:[^/\\]|\\.)*/|[^\s()"]+)')

    def __init__(self, text: str) -> None:
        self.tokens = [m.group(1) for m in self.TOKEN.finditer(text) if m.group(1)]
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        self.i += 1
        return self.tokens[self.i - 1]

    def _joined(self, op: str, operand: Callable[[], list[Any]]) -> list[Any]:
        node: list[Any] = [op, operand()]
        while self.peek() == op:
            self.take()
            node.append(operand())
        return node if len(node) > 2 else node[1]

    def parse_or(self) -> list[Any]:
        return self._joined("or", self.parse_and)

    def parse_and(self) -> list[Any]:
        return self._joined("and", self.parse_atom)

    def parse_atom(self) -> list[Any]:
        if self.peek() == "(":
            self.take()
            inner = self.parse_or()
            if self.peek() == ")":
                self.take()
            return inner
        words: list[str] = []
        depth = 0
        while self.peek() is not None and (depth or self.peek() not in ("and", "or", ")")):
            word = self.take()
            depth += (word == "(") - (word == ")")
            words.append(word)
        if len(words) == 3 and words[0].startswith("r.") and re.fullmatch(r"r\.\w+", words[0]):
            column, op, value = words
            column = column[2:]
            operator_ok = (column == "_value" and op in VALUE_OPS) or (
                column not in ("_value", "_time", "_start", "_stop") and op in TAG_OPS)
            value_ok = value.startswith(('"', "/")) or re.fullmatch(r"_\w+", value) is not None
            if operator_ok and value_ok:
                return ["cmp", column, op, value]
        return ["opaque", " ".join(words)]


def _pushable(node: list[Any]) -> bool:
    if node[0] == "cmp":
        return True
    if node[0] in ("and", "or"):
        return all(_pushable(n) for n in node[1:])
    return False


def _predicate_text(filter_args: str) -> str:
    m = re.match(r"\s*fn:\s*\(r\)\s*=>\s*(.*)$", filter_args, re.S)
    return m.group(1) if m else filter_args


def split_filter(filter_args: str) -> tuple[list[list[Any]], bool]:
    """(the conjuncts storage takes, whether a remainder runs in memory)."""
    tree = _Parser(_predicate_text(filter_args)).parse_or()
    conjuncts = tree[1:] if tree[0] == "and" else [tree]
    pushed = [c for c in conjuncts if _pushable(c)]
    return pushed, len(pushed) < len(conjuncts)


def _value(token: str, params: dict[str, Any]) -> Any:
    if token.startswith('"'):
        return bytes(token[1:-1], "utf-8").decode("unicode_escape")
    if token.startswith("/"):
        return re.compile(token[1:-1])
    return params[token]


def evaluate(node: list[Any], column: Callable[[str], Any], params: dict[str, Any]) -> bool:
    kind = node[0]
    if kind == "and":
        return all(evaluate(n, column, params) for n in node[1:])
    if kind == "or":
        return any(evaluate(n, column, params) for n in node[1:])
    _, name, op, token = node
    have, want = column(name), _value(token, params)
    if op in ("=~", "!~"):
        found = bool(want.search(have or ""))
        return found if op == "=~" else not found
    have = "" if have is None else have  # storage: a series without the tag has it empty
    return {"==": have == want, "!=": have != want, "<": have < want, "<=": have <= want,
            ">": have > want, ">=": have >= want}[op]


@dataclass(frozen=True)
class Pushdown:
    """What storage takes over of one chain."""

    conjuncts: list[list[Any]]  # pushed predicates, all must hold
    complete: bool  # every filter before the next call was pushed whole
    then: str  # "last" / "first", "window" (aggregateWindow), "group" (group |> aggregate) or "" (raw points)
    every: str = ""  # aggregateWindow's every argument, as written
    group_columns: tuple[str, ...] = ()  # group()'s columns, as written (strings quoted, parameters bare)
    location: str = ""  # aggregateWindow's time zone parameter, if it names one


def pushdown(calls: list[Call]) -> Pushdown:
    conjuncts: list[list[Any]] = []
    i = 2 if len(calls) > 1 and calls[1].name == "range" else 1
    complete = True
    while i < len(calls) and calls[i].name == "filter":
        pushed, rest = split_filter(calls[i].args)
        conjuncts += pushed
        i += 1
        if rest:
            complete = False
            break
    if not complete or i >= len(calls):
        return Pushdown(conjuncts, complete, "")
    nxt = calls[i]
    if nxt.name in PUSHED_SELECTORS and not nxt.args.strip():
        return Pushdown(conjuncts, True, nxt.name)
    if nxt.name == "aggregateWindow":
        fn = re.search(r"\bfn:\s*(\w+)", nxt.args)
        every = re.search(r"\bevery:\s*([\w.]+)", nxt.args)
        zone = re.search(r"location:\s*timezone\.location\(name:\s*(\w+)\)", nxt.args)
        if fn and fn.group(1) in PUSHED_AGGREGATES:
            return Pushdown(conjuncts, True, "window", every.group(1) if every else "",
                            location=zone.group(1) if zone else "")
    if nxt.name == "group" and i + 1 < len(calls) and calls[i + 1].name in PUSHED_AGGREGATES:
        columns = re.search(r"columns:\s*\[([^\]]*)\]", nxt.args)
        names = tuple(c.strip() for c in columns.group(1).split(",") if c.strip()) if columns else ()
        return Pushdown(conjuncts, True, "group", group_columns=names)
    return Pushdown(conjuncts, True, "")


def storage_points(text: str, params: dict[str, Any], rows: list[Any], window: Callable[[int, str], int]) -> int:
    """Points storage hands to the query engine for ``text`` over ``rows`` (the range's stored rows,
    each with ``measurement``, ``tags``, ``field``, ``value``, ``time`` and ``col(name)``).

    ``window(t, every)`` is the start of the aggregateWindow window holding ``t``."""

    def column(r: Any) -> Callable[[str], Any]:
        return lambda name: r.value if name == "_value" else r.col(name)

    def resolve(token: str) -> str:
        return token.strip('"') if token.startswith('"') else str(params.get(token, token))

    total = 0
    for chain in chains(text):
        pd = pushdown(chain)
        chosen = [r for r in rows if all(evaluate(c, column(r), params) for c in pd.conjuncts)]
        series = {(r.measurement, tuple(sorted(r.tags.items())), r.field) for r in chosen}
        if pd.then in PUSHED_SELECTORS:
            total += len(series)
        elif pd.then == "window" and pd.location and params.get(pd.location) not in ("UTC", "Etc/UTC"):
            total += len(chosen)  # InfluxDB 2.7 pushes no window aggregate in another zone (influxdb #24293)
        elif pd.then == "window":
            total += len({(r.measurement, tuple(sorted(r.tags.items())), r.field, window(r.time, pd.every))
                          for r in chosen})
        elif pd.then == "group":
            cols = [resolve(c) for c in pd.group_columns]
            total += len({tuple(r.col(c) for c in cols) for r in chosen})
        else:
            total += len(chosen)
    return total
