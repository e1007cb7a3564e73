"""The whitelist of a formula's call-like terms, checked on Python's syntax tree.

formulaic evaluates a term such as ``log(x)`` or ``I(x**2)`` with Python's ``eval``.
``read_expression`` parses such a term with ``ast`` (parsing evaluates nothing) and
walks the tree without recursion, allowing only:

* names that are columns of the table (a backticked name, `` `floor area` ``, is one);
* whole or decimal numbers, and arithmetic: ``+ - * / **`` and unary ``-``/``+``; a
  power's base must use a column and its exponent be a column or a number from -100 to
  100 (Python computes whole numbers exactly: ``I(2 ** 2 ** 100)`` would never end);
* calls by name, with positional arguments, to the grammar's functions: ``log``, ``log2``,
  ``log10``, ``exp``, ``sqrt``, ``abs`` and ``I`` (one argument, anywhere in arithmetic);
  and, as a whole term only, ``C(column)``, ``poly(x, degree)`` with a literal whole
  ``degree`` (also as ``degree=``), ``center(x)`` and ``scale(x)``.

Everything else (attribute access, subscripts, strings, other names and calls, keyword
and starred arguments, lambdas, comprehensions, f-strings, ``:=``, comparisons) is a
``FormulaError`` that names it. The tree's depth and size are bounded, so that neither
this walk nor formulaic's own formatting of the code (``ast.unparse``, recursive) can
run out of stack.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from formulaic.parser.algos.sanitize_tokens import sanitize_python_code
from formulaic.utils.code import sanitize_variable_names

from service.errors import excerpt

MAX_NESTING = 32
MAX_NODES = 2_000
MAX_DEGREE = 20
MAX_POWER = 100
MATH = frozenset({"I", "log", "log2", "log10", "exp", "sqrt", "abs"})
STATEFUL = frozenset({"poly", "center", "scale"})
FUNCTIONS = MATH | STATEFUL | {"C"}
ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
SIGNS = (ast.USub, ast.UAdd)
GRAMMAR = (
    "a formula may use only columns, numbers, arithmetic (+ - * / **) and the functions "
    "C, I, log, log2, log10, exp, sqrt, abs, poly, center and scale"
)
DESCRIPTIONS: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "a subscript",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.JoinedStr: "an f-string",
    ast.NamedExpr: "an assignment (:=)",
    ast.Starred: "a starred argument",
    ast.Compare: "a comparison",
    ast.BoolOp: "a boolean operator",
    ast.IfExp: "a conditional expression",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.Slice: "a slice",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


class FormulaError(ValueError):
    """A formula breaks the grammar; the message is the sentence for the client."""


@dataclass(frozen=True)
class Expression:
    """One factor of a formula as read.

    ``text`` is its name as formulaic (and patsy) name its design columns: a column name,
    or a call with Python's spacing (``I(x ** 2)``). ``call`` is the outer function
    (``None`` for a plain column), ``columns`` the columns it reads, ``degree`` the
    degree of ``poly``, and ``numeric`` whether its columns must be numeric (everything
    but a plain column and ``C(column)``).
    """

    text: str
    call: str | None
    columns: tuple[str, ...]
    degree: int
    plain: bool

    @property
    def numeric(self) -> bool:
        """Whether the columns this factor reads must be numeric."""
        return not self.plain and self.call != "C"


def read_expression(code: str, known: frozenset[str], columns: Sequence[str], *, target: bool = False) -> Expression:
    """Check one call-like term against the whitelist; answer what it reads, or raise ``FormulaError``."""
    aliases: dict[str, str] = {}
    sanitized = sanitize_variable_names(code, {}, aliases, template="_formulaic_{}")
    try:
        tree = ast.parse(sanitized, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise FormulaError(f"The formula's term {excerpt(code)!r} is not an expression of the grammar; {GRAMMAR}.") from None
    names = walk(tree, code, known, columns, aliases, target)
    call = tree.func.id if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) else None
    if call is None:
        raise FormulaError(f"The formula's term {excerpt(code)!r} is not a call of one of the grammar's functions; {GRAMMAR}.")
    if not names:
        raise FormulaError(f"The formula's term {excerpt(code)!r} uses no column; a term is computed from columns.")
    degree = poly_degree(tree, code) if call == "poly" else 0
    clash = sorted(set(names) & FUNCTIONS)
    if clash:
        raise FormulaError(
            f"The formula uses the column {clash[0]!r} in {excerpt(code)!r}, but {clash[0]!r} is also a function "
            "of the grammar; rename the column."
        )
    formatted = sanitize_python_code(code)
    if formatted != code and read_expression(formatted, known, columns, target=target).columns != tuple(dict.fromkeys(names)):
        # formulaic evaluates the formatted text, not the client's: it is checked as well
        raise FormulaError(f"The formula's term {excerpt(code)!r} does not read back the same once formatted.")
    return Expression(formatted, call, tuple(dict.fromkeys(names)), degree, False)


def walk(tree: ast.expr, code: str, known: frozenset[str], columns: Sequence[str], aliases: dict[str, str], target: bool) -> list[str]:
    """Walk the tree without recursion; answer the columns it reads in order, or raise ``FormulaError``."""
    names: list[str] = []
    stack: list[tuple[ast.AST, int, str]] = [(tree, 1, "top")]
    count = 0
    while stack:
        node, depth, role = stack.pop()
        count += 1
        if depth > MAX_NESTING or count > MAX_NODES:
            raise FormulaError(f"The formula's term {excerpt(code)!r} is nested too deeply or is too long.")
        if isinstance(node, ast.Name):
            names.append(read_name(node, code, known, columns, aliases))
        elif isinstance(node, ast.Constant):
            value = node.value
            if role != "degree" and (type(value) not in (int, float)):
                what = "a string literal" if isinstance(value, (str, bytes)) else f"the constant {excerpt(repr(value))}"
                raise FormulaError(f"The formula's term {excerpt(code)!r} uses {what}; {GRAMMAR}.")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ARITHMETIC):
            if isinstance(node.op, ast.Pow):
                check_power(node, code)
            stack += [(node.left, depth + 1, "arithmetic"), (node.right, depth + 1, "arithmetic")]
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, SIGNS):
            stack.append((node.operand, depth + 1, "arithmetic"))
        elif isinstance(node, ast.Call):
            stack += check_call(node, code, depth, role, target)
        else:
            what = DESCRIPTIONS.get(type(node), "an operator or construct that is not part of the grammar")
            raise FormulaError(f"The formula's term {excerpt(code)!r} uses {what}; {GRAMMAR}.")
    return names


def check_power(node: ast.BinOp, code: str) -> None:
    """Bound ``a ** b``: Python computes whole numbers exactly, so ``I(2 ** 2 ** 100)`` would never end.

    The base must use a column (the arithmetic is then in floats), the power be a column
    or a number from -``MAX_POWER`` to ``MAX_POWER``.
    """
    power = node.right
    if isinstance(power, ast.UnaryOp) and isinstance(power.op, SIGNS):
        power = power.operand
    value = power.value if isinstance(power, ast.Constant) else None
    literal = isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= MAX_POWER
    if not (literal or isinstance(power, ast.Name)) or not any(isinstance(n, ast.Name) for n in ast.walk(node.left)):
        raise FormulaError(
            f"The formula's term {excerpt(code)!r} raises to a power that is not a number from -{MAX_POWER} to "
            f"{MAX_POWER} or a column, or raises a number without a column; write powers as I(x**2)."
        )


def check_call(node: ast.Call, code: str, depth: int, role: str, target: bool) -> list[tuple[ast.AST, int, str]]:
    """Check one call: a function of the grammar, by name, with its arguments; answer the arguments to walk."""
    if not isinstance(node.func, ast.Name):
        what = DESCRIPTIONS.get(type(node.func), "a call of something that is not a function name")
        raise FormulaError(f"The formula's term {excerpt(code)!r} uses {what}; {GRAMMAR}.")
    name = node.func.id
    if name not in FUNCTIONS:
        raise FormulaError(f"The formula's term {excerpt(code)!r} calls {excerpt(name)!r}, which is not a function of the grammar; {GRAMMAR}.")
    if name not in MATH and role != "top":
        raise FormulaError(f"The formula's term {excerpt(code)!r} uses {name}() inside another expression; {name}() must be a whole term.")
    if name not in MATH and target:
        raise FormulaError(f"The formula's left side uses {name}(); a target may be a column or a function such as log() of one.")
    keywords = [k.arg for k in node.keywords]
    if any(isinstance(a, ast.Starred) for a in node.args) or None in keywords:
        raise FormulaError(f"The formula's term {excerpt(code)!r} uses a starred argument; {GRAMMAR}.")
    if name == "poly" and keywords == ["degree"] and len(node.args) == 1:
        args = [node.args[0], node.keywords[0].value]
    elif keywords:
        raise FormulaError(f"The formula's term {excerpt(code)!r} uses the keyword argument {excerpt(str(keywords[0]))!r}; write arguments by position.")
    else:
        args = list(node.args)
    arity = 2 if name == "poly" else 1
    if len(args) != arity:
        example = "poly(x, 2)" if name == "poly" else f"{name}(x)"
        raise FormulaError(f"The formula's term {excerpt(code)!r} calls {name}() with {len(args)} arguments; write it as {example}.")
    if name == "C" and not isinstance(args[0], ast.Name):
        raise FormulaError(f"The formula's term {excerpt(code)!r} calls C() on an expression; C() takes one column, as in C(zip).")
    walked: list[tuple[ast.AST, int, str]] = [(args[0], depth + 1, "arithmetic")]
    if name == "poly":
        walked.append((args[1], depth + 1, "degree"))
    return walked


def poly_degree(tree: ast.Call, code: str) -> int:
    """The literal whole degree of ``poly(x, degree)``, from 1 to ``MAX_DEGREE``."""
    node = tree.args[1] if len(tree.args) == 2 else tree.keywords[0].value
    value = node.value if isinstance(node, ast.Constant) else None
    if type(value) is not int or not 1 <= value <= MAX_DEGREE:
        raise FormulaError(f"The formula's term {excerpt(code)!r} needs a whole degree from 1 to {MAX_DEGREE}, as in poly(x, 2).")
    return value


def read_name(node: ast.Name, code: str, known: frozenset[str], columns: Sequence[str], aliases: dict[str, str]) -> str:
    """The column a name in the code stands for, or ``FormulaError``."""
    name = aliases.get(node.id, node.id)
    if name.startswith("__") and name.endswith("__"):
        raise FormulaError(f"The formula's term {excerpt(code)!r} uses the name {excerpt(name)!r}; dunder names are never looked up.")
    if name in FUNCTIONS and name not in known:
        raise FormulaError(f"The formula's term {excerpt(code)!r} uses the function {name} as a value; call it, as in {name}(x).")
    if name not in known:
        close = suggest(name, columns)
        hint = f"; did you mean {close!r}?" if close else "."
        raise FormulaError(f"The formula's term {excerpt(code)!r} uses {excerpt(name)!r}, which is not a column of the table{hint}")
    return name


def suggest(name: str, columns: Sequence[str], limit: int = 64, candidates: int = 5_000) -> str | None:
    """The closest column name, if one is close; bounded work: short names only, a bounded number of them."""
    if len(name) > limit:
        return None
    lower = name.casefold()
    short = [c for c in columns[:candidates] if len(c) <= limit]
    for column in short:
        if column.casefold() == lower:
            return column
    found = difflib.get_close_matches(name, short, n=1, cutoff=0.75)
    return found[0] if found else None
