"""Small wrong changes to Python source, made with the `ast` module.

Each `Mutant` is one edit of one module: flip a comparison, move a boundary, swap `and`/`or`,
drop a `not`, negate a condition, drop a `raise` or a call, change a constant or an operator,
return `None` instead of a value. The edit replaces one node's source segment, so the rest of
the file keeps its text and line numbers. Docstrings, annotations, `__all__`, `Literal[...]`
types and `if TYPE_CHECKING:` blocks are left alone: changing them changes nothing at run
time. Nor is the wording of messages for people (strings that start with a capital letter
and contain a space): tests pin the error codes and statuses those messages travel with, not
their prose.

A mutant's `key` names it by module, enclosing function, kind and text (not by line number),
so judgments recorded against a key survive edits elsewhere in the file.
"""

from __future__ import annotations

import ast
import hashlib
from collections import Counter
from dataclasses import dataclass

NEGATED_COMPARISONS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
BOUNDARIES: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
}
OPERATORS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}


@dataclass(frozen=True)
class Mutant:
    module: str  # path relative to the project, e.g. "app/auth/tokens.py"
    line: int
    kind: str
    scope: str  # the enclosing function or class, "" at module level
    original: str  # the replaced source text (first line of it)
    replacement: str
    start: tuple[int, int]  # (line, column) in characters, 1-based lines
    end: tuple[int, int]
    occurrence: int = 0  # among mutants with the same module, scope, kind and text

    @property
    def key(self) -> str:
        text = f"{self.module}|{self.scope}|{self.kind}|{self.original}|{self.replacement}"
        return f"{text}|{self.occurrence}"

    @property
    def id(self) -> str:
        return hashlib.sha1(self.key.encode()).hexdigest()[:8]

    def describe(self) -> str:
        return f"{self.kind}: {self.original!r} -> {self.replacement!r}"

    def apply(self, source: str) -> str:
        lines = source.splitlines(keepends=True)
        offsets = [0]
        for text in lines:
            offsets.append(offsets[-1] + len(text))
        start = offsets[self.start[0] - 1] + self.start[1]
        end = offsets[self.end[0] - 1] + self.end[1]
        return source[:start] + self.replacement + source[end:]


def mutants_of(module: str, source: str) -> list[Mutant]:
    """Every mutant of `source` (the text of `module`) that parses and changes the code."""
    tree = ast.parse(source)
    original_dump = ast.dump(tree)
    finder = _Finder(module, source)
    finder.visit(tree)
    counts: Counter[str] = Counter()
    found: list[Mutant] = []
    for found_first in finder.found:
        base = found_first.key  # occurrence 0: the same text in the same scope counts up
        mutant = Mutant(**{**found_first.__dict__, "occurrence": counts[base]})
        counts[base] += 1
        try:
            changed = ast.dump(ast.parse(mutant.apply(source)))
        except SyntaxError:
            continue
        if changed != original_dump:
            found.append(mutant)
    return found


class _Finder(ast.NodeVisitor):
    def __init__(self, module: str, source: str) -> None:
        self.module = module
        self.lines = source.splitlines(keepends=True)
        self.scopes: list[str] = []
        self.found: list[Mutant] = []

    # -- where not to look ----------------------------------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for default in [*node.args.defaults, *filter(None, node.args.kw_defaults)]:
            self.visit(default)
        self._visit_scope(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_scope(node)

    def _visit_scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        """Decorators, then the body (without its docstring) inside the scope `node` opens."""
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.scopes.append(node.name)
        for statement in _without_docstring(node.body):
            self.visit(statement)
        self.scopes.pop()

    def visit_Module(self, node: ast.Module) -> None:
        for statement in _without_docstring(node.body):
            self.visit(statement)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        if _names(node.test) == {"TYPE_CHECKING"}:
            return
        self._negate_condition(node.test)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not (isinstance(node.value, ast.Name) and node.value.id == "Literal"):  # a type
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        return

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.visit(value.value)

    # -- conditions -----------------------------------------------------------------------

    def visit_While(self, node: ast.While) -> None:
        self._negate_condition(node.test)
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._negate_condition(node.test)
        self.generic_visit(node)

    def visit_Assert(self, node: ast.Assert) -> None:
        self._negate_condition(node.test)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        for condition in node.ifs:
            self._negate_condition(condition)
        self.generic_visit(node)

    def _negate_condition(self, test: ast.expr) -> None:
        # Comparisons and `not` have mutants of their own; negate everything else.
        if isinstance(test, ast.Compare | ast.UnaryOp):
            return
        self._add(test, "negate condition", f"not ({ast.unparse(test)})")

    def visit_Compare(self, node: ast.Compare) -> None:
        for index, op in enumerate(node.ops):
            for kind, table in (("flip comparison", NEGATED_COMPARISONS), ("boundary", BOUNDARIES)):
                if type(op) in table:
                    ops = list(node.ops)
                    ops[index] = table[type(op)]()
                    changed = ast.Compare(left=node.left, ops=ops, comparators=node.comparators)
                    self._add(node, kind, ast.unparse(changed))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._add(node, "and/or", ast.unparse(ast.BoolOp(op=other, values=node.values)))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self._add(node, "drop not", ast.unparse(node.operand))
        elif isinstance(node.op, ast.USub):
            self._add(node, "drop minus", ast.unparse(node.operand))
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) in OPERATORS and not _is_type_union(node):
            changed = ast.BinOp(left=node.left, op=OPERATORS[type(node.op)](), right=node.right)
            self._add(node, "operator", ast.unparse(changed))
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if type(node.op) in OPERATORS:
            changed = ast.AugAssign(
                target=node.target, op=OPERATORS[type(node.op)](), value=node.value
            )
            self._add(node, "operator", ast.unparse(changed))
        self.generic_visit(node)

    # -- statements -----------------------------------------------------------------------

    def visit_Raise(self, node: ast.Raise) -> None:
        self._add(node, "drop raise", "pass")
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        call = node.value.value if isinstance(node.value, ast.Await) else node.value
        if isinstance(call, ast.Call):
            self._add(node, "drop call", "pass")
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        value = node.value
        # Returning None for a falsy constant changes nothing a caller can tell in a condition.
        if value is not None and not (isinstance(value, ast.Constant) and not value.value):
            self._add(value, "return None", "None")
        self.generic_visit(node)

    # -- constants ------------------------------------------------------------------------

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self._add(node, "constant", repr(not value))
        elif isinstance(value, int | float):
            self._add(node, "constant", repr(value + 1))
        elif isinstance(value, str) and not _is_prose(value):
            self._add(node, "constant", repr(f"XX{value}XX") if value else "'XX'")
        elif isinstance(value, bytes):
            self._add(node, "constant", repr(b"XX" + value + b"XX"))

    # -- bookkeeping ----------------------------------------------------------------------

    def _add(self, node: ast.AST, kind: str, replacement: str) -> None:
        start = (node.lineno, self._column(node.lineno, node.col_offset))  # type: ignore[attr-defined]
        end_line = node.end_lineno  # type: ignore[attr-defined]
        end = (end_line, self._column(end_line, node.end_col_offset))  # type: ignore[attr-defined]
        original = ast.unparse(node) if not isinstance(node, ast.stmt) else self._first_line(node)
        self.found.append(
            Mutant(
                module=self.module,
                line=node.lineno,  # type: ignore[attr-defined]
                kind=kind,
                scope=".".join(self.scopes),
                original=original,
                replacement=replacement,
                start=start,
                end=end,
            )
        )

    def _column(self, line: int, byte_offset: int) -> int:
        """AST columns count UTF-8 bytes; source slicing counts characters."""
        return len(self.lines[line - 1].encode()[:byte_offset].decode())

    def _first_line(self, node: ast.AST) -> str:
        line = self.lines[node.lineno - 1]  # type: ignore[attr-defined]
        return line.strip()


def _is_prose(text: str) -> bool:
    """A sentence for people (an error message): its wording is not behaviour to pin.

    Protocol values (claim and parameter names, scopes, log event names) are lowercase or
    have no spaces, so they are still mutated.
    """
    return text[:1].isupper() and " " in text.strip()


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def _is_type_union(node: ast.BinOp) -> bool:
    """`X | None` in a runtime expression (isinstance, casts) is a type, not arithmetic."""

    def is_type(part: ast.expr) -> bool:
        if isinstance(part, ast.BinOp):
            return _is_type_union(part)
        if isinstance(part, ast.Constant):
            return part.value is None
        return isinstance(part, ast.Name | ast.Attribute | ast.Subscript) and (
            _first_name(part)[:1].isupper() or _first_name(part) in _BUILTIN_TYPES
        )

    return isinstance(node.op, ast.BitOr) and is_type(node.left) and is_type(node.right)


_BUILTIN_TYPES = {"str", "int", "float", "bytes", "bool", "dict", "list", "tuple", "set", "type"}


def _first_name(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    is_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    return body[1:] if is_docstring and isinstance(first.value.value, str) else body
