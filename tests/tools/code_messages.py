"""The messages bblogin's code can print, read from its source, and a matcher for the docs' quotes.

A *template* is one message string of the code as it prints it: the constant parts of an
f-string (or a ``%``/``.format`` string, or an implicit or ``+`` concatenation) in order, each
replacement field a HOLE that stands for any value. A *quote* is what the docs write: ``…``
stands for text the quote leaves out (a value, or a part of the message it skips).

:func:`match` matches a quote against the templates raised as errors, one template at a time:

- the quote's literal text must be the template's constant text, character by character;
- a ``…`` of the quote may stand for any stretch of the template (constants and fields);
- a field of the template may stand for a value the quote spells out (HOST:PORT, '…', 407: no
  spaces), or for one whole other string of the code (a message built from another, as
  ``f"the ID token failed verification: {check}"`` is with its check's text), matched the same
  way except that there a ``…`` stands only for fields: that string's constants are all quoted.

Nothing is ever glued from the end of one string and the start of an unrelated one: text that
is in no single template does not match. The source is parsed with :mod:`ast` only (nothing of
bblogin is imported but ``_errors``), so this takes a fraction of a second.
"""

from __future__ import annotations

import ast
import functools
import pathlib
from dataclasses import dataclass

from bblogin import _errors

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOLE = "\0"  # a replacement field of a template
WILD = "…"  # what a quote leaves out
NESTING = 2  # how deep a field may hold another string of the code, which may hold another


@dataclass(frozen=True)
class Template:
    text: str  # constants with HOLE for each field (adjacent fields merged)
    error: str | None  # the exception class raised with it; None for a line printed as "bblogin: …"
    exit_code: int | None
    where: str  # file:line

    def constants(self) -> list[str]:
        return [part for part in self.text.split(HOLE) if part]


def _merge_holes(text: str) -> str:
    while HOLE + HOLE in text:
        text = text.replace(HOLE + HOLE, HOLE)
    return text


def _percent(fmt: str) -> str:
    """A %-format string with its conversions (%s, %d, %(name)r, %5.1f …) as holes; %% as %."""
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            if fmt[i + 1] == "%":
                out.append("%")
                i += 2
                continue
            j = i + 1
            if fmt[j] == "(":
                j = fmt.index(")", j) + 1
            while j < len(fmt) and fmt[j] in "#0- +*.0123456789":
                j += 1
            out.append(HOLE)
            i = j + 1
            continue
        out.append(fmt[i])
        i += 1
    return "".join(out)


def _braces(fmt: str) -> str:
    """A str.format string with its fields ({}, {name}, {0!r:>5}) as holes; {{ and }} as braces."""
    out, i = [], 0
    while i < len(fmt):
        if fmt.startswith("{{", i) or fmt.startswith("}}", i):
            out.append(fmt[i])
            i += 2
        elif fmt[i] == "{":
            i = fmt.index("}", i) + 1
            out.append(HOLE)
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def texts(node: ast.AST, names: dict[str, list[tuple[bool, ast.AST]]] | None = None) -> list[str]:
    """What a string expression can print, one entry per alternative (``a if c else b``); a
    part that is not a string literal is a HOLE. ``names`` resolves a variable to what was
    assigned to it in the same function (``text = f"…"; text += f"…"``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(value.value)
            elif isinstance(value, ast.FormattedValue):
                # {x!r} of a string prints it in quotes; the HOLE takes the quotes of other types
                parts.append(f"'{HOLE}'" if value.conversion == ord("r") else HOLE)
        return [_merge_holes("".join(parts))]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = texts(node.left, names) or [HOLE], texts(node.right, names) or [HOLE]
        if left == [HOLE] and right == [HOLE]:
            return []
        return [_merge_holes(a + b) for a in left for b in right]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return [_merge_holes(_percent(fmt)) for fmt in texts(node.left, names)]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return [_merge_holes(_braces(fmt)) for fmt in texts(node.func.value, names)]
    if isinstance(node, ast.IfExp):
        return texts(node.body, names) + texts(node.orelse, names)
    if isinstance(node, ast.Name) and names and node.id in names:
        found: list[str] = []
        for augmented, value in names[node.id]:
            found += [a + b for a in found for b in texts(value)] if augmented else texts(value)
        return found
    return []


def _assignments(function: ast.AST) -> dict[str, list[tuple[bool, ast.AST]]]:
    """name -> what the function assigns to it, in order (True: ``name += …``)."""
    names: dict[str, list[tuple[bool, ast.AST]]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            names.setdefault(node.targets[0].id, []).append((False, node.value))
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add) and isinstance(node.target, ast.Name):
            names.setdefault(node.target.id, []).append((True, node.value))
    return names


def _error_classes(classes: list[ast.ClassDef]) -> dict[str, int]:
    """Every exception class of bblogin (those of _errors and their subclasses elsewhere) and its exit code."""
    codes = {name: cls.exit_code for name, cls in vars(_errors).items() if isinstance(cls, type) and issubclass(cls, _errors.BbloginError)}
    grown = True
    while grown:
        grown = False
        for cls in classes:
            bases = [b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else "" for b in cls.bases]
            base = next((b for b in bases if b in codes), None)
            if cls.name in codes or base is None:
                continue
            code = codes[base]
            for stmt in cls.body:
                if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "exit_code" for t in stmt.targets):
                    value = stmt.value
                    if isinstance(value, ast.Constant):
                        code = value.value
                    elif isinstance(value, ast.Name):
                        code = getattr(_errors, value.id)
                    elif isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
                        code = codes[value.value.id]
            codes[cls.name] = code
            grown = True
    return codes


def _called(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else node.func.attr if isinstance(node.func, ast.Attribute) else ""


@functools.cache
def catalogue() -> tuple[tuple[Template, ...], tuple[str, ...]]:
    """(the messages bblogin raises or prints as ``bblogin: …``, every string of its code)."""
    classes: list[ast.ClassDef] = []
    calls: list[tuple[str, ast.Call, ast.AST]] = []  # (file, call, the function it is in)
    printed: list[tuple[str, ast.AST]] = []  # (file, a whole string expression)
    for path in sorted((ROOT / "bblogin").rglob("*.py")):
        where = str(path.relative_to(ROOT))
        if where.startswith("bblogin/devidp/"):  # the dex double: its errors are its pages, not bblogin's messages
            continue
        tree = ast.parse(path.read_text(), where)
        stack: list[tuple[ast.AST, ast.AST, bool]] = [(tree, tree, False)]  # (node, its function, a piece of a larger string)
        while stack:
            node, function, piece = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                function = node
            elif isinstance(node, ast.ClassDef):
                classes.append(node)
            elif isinstance(node, ast.Call):
                calls.append((where, node, function))
            if not piece and isinstance(node, (ast.Constant, ast.JoinedStr, ast.BinOp, ast.Call)):
                printed.append((where, node))
            # a piece of a larger string is no string of its own; nor is a docstring (never printed)
            pieces = isinstance(node, (ast.JoinedStr, ast.BinOp, ast.Attribute)) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
            stack.extend((child, function, pieces) for child in ast.iter_child_nodes(node))
    codes = _error_classes(classes)
    messages: list[Template] = []
    assigned: dict[int, dict[str, list[tuple[bool, ast.AST]]]] = {}
    for where, call, function in calls:
        if _called(call) not in codes or _called(call) == "OAuthError":  # OAuthError builds its text from the error code
            continue
        arg = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "message"), None)
        if arg is None:
            continue
        names = assigned.setdefault(id(function), _assignments(function)) if isinstance(arg, ast.Name) else None
        messages += [Template(text, _called(call), codes[_called(call)], f"{where}:{call.lineno}") for text in texts(arg, names)]
    strings: set[str] = set()
    for where, node in printed:
        for text in texts(node):
            if text.strip(HOLE):
                strings.add(text)
            if text.startswith("bblogin: "):  # a line printed to stderr (a warning, a note)
                messages.append(Template(text.removeprefix("bblogin: "), None, None, f"{where}:{node.lineno}"))
    return tuple(dict.fromkeys(messages)), tuple(sorted(strings))


def _ends(quote: str, start: int, template: str, depth: int, nested: tuple[str, ...]) -> frozenset[int]:
    """Every k such that quote[start:k] matches the whole template."""

    @functools.cache
    def go(i: int, j: int) -> frozenset[int]:
        out: set[int] = set()
        here = quote[i] if i < len(quote) else None
        if j == len(template):
            out.add(i)
            if here == WILD:
                out |= go(i + 1, j)
            return frozenset(out)
        want = template[j]
        if here == WILD:
            if depth == 0 or want == HOLE:  # in a string within a field, … stands only for fields
                out |= go(i, j + 1)  # the … stands for this character (or field) too
            out |= go(i + 1, j)  # … ends here
        if want == HOLE:
            out |= go(i, j + 1)  # the field ends (or is empty)
            if here is not None and here != " ":
                out |= go(i + 1, j)  # a value without spaces
            if here is not None and depth < NESTING:
                for k in _nested_ends(quote, i, depth + 1, nested):
                    out |= go(k, j)  # a whole other string of the code
        elif here == want:
            out |= go(i + 1, j + 1)
        return frozenset(out)

    return go(start, 0)


@functools.cache
def _nested_ends(quote: str, start: int, depth: int, nested: tuple[str, ...]) -> frozenset[int]:
    out: set[int] = set()
    for text in nested:
        if text[0] not in (HOLE, quote[start]) and quote[start] != WILD:
            continue
        out |= {k for k in _ends(quote, start, text, depth, nested) if k > start}
    return frozenset(out)


def _candidates(quote: str, templates: tuple[str, ...] | list[str], shortest: int) -> tuple[str, ...]:
    """The templates with a constant of at least ``shortest`` characters that the quote holds as it is."""
    return tuple(t for t in templates if any(len(c.strip()) >= shortest and c in quote for c in t.split(HOLE)))


def match(quote: str) -> list[Template]:
    """The messages of bblogin that ``quote`` (without its ``bblogin: ``) is a quote of."""
    messages, strings = catalogue()
    nested = _candidates(quote, strings, 6)
    return [m for m in messages if _candidates(quote, [m.text], 8) and len(quote) in _ends(quote, 0, m.text, 0, nested)]
