"""The operators of a formula, and bounds on what they expand to, checked before formulaic expands them.

formulaic expands the operator tree into terms by enumeration: ``a**k`` takes
``len(a)**k`` products, each ``*`` doubles the terms, ``:`` multiplies factor lists, so
``(x1 + ... + x9)**9`` or ``x1*...*x30`` would run for minutes. ``check_tree`` computes
upper bounds on the terms, the factors per term and the products of every node of the
tree, without recursion and without expanding anything, and refuses a formula past them.
``check_nesting`` bounds parentheses before any parser runs; ``check_operator`` admits
only the grammar's operators (``~ + - : * **``, ``.`` and parentheses).
"""

from __future__ import annotations

from formulaic.parser.types import ASTNode, Token

from service.errors import excerpt
from service.expressions import MAX_NESTING, FormulaError

#: Bounds on what the operators may expand to: factors in one term, the power of ``**``,
#: and the products formulaic enumerates.
MAX_ORDER = 10
MAX_POWER = 10
MAX_PRODUCTS = 20_000
OPERATOR_CHARACTERS = frozenset("~+-:*")
HINTS = {
    "^": "write ** for powers, as in (a + b)**2",
    "/": "nesting (a / b) is not part of the grammar; write a + a:b",
    "in": "nesting (%in%) is not part of the grammar; write a + a:b",
    "|": "formulas have one part; '|' is not part of the grammar",
}


def check_nesting(text: str) -> None:
    """Refuse parentheses nested deeper than ``MAX_NESTING`` (outside backticks), before any parser."""
    depth = 0
    quoted = False
    for char in text:
        if char == "`":
            quoted = not quoted
        elif quoted:
            continue
        elif char in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise FormulaError(f"The formula nests parentheses more than {MAX_NESTING} levels deep.")
        elif char in ")]}":
            depth -= 1


def check_operator(piece: str, right: bool) -> None:
    """Refuse operators outside the grammar, and any but ``+`` on the left side."""
    bad = piece if any(c.isalnum() for c in piece) else next((c for c in piece if c not in OPERATOR_CHARACTERS), "")
    if bad:
        hint = HINTS.get(bad, "the operators are ~ + - : * ** and parentheses")
        raise FormulaError(f"The formula uses the operator {excerpt(bad)!r}, which is not part of the grammar: {hint}.")
    before = piece.split("~")[0]
    if not right and before not in ("", "+"):
        raise FormulaError(f"The formula's left side uses {before!r}; join several targets with '+' only.")


def check_tree(tree: ASTNode | Token | None, dot_columns: int, max_terms: int) -> None:
    """Bound what formulaic's expansion of the operator tree would cost, without expanding it.

    Walks the tree without recursion and computes, per node, an upper bound on its terms,
    on the factors in one term and on the products formulaic enumerates to expand it.
    """
    if not isinstance(tree, ASTNode) or tree.operator.symbol != "~" or len(tree.args) != 2:
        raise FormulaError("The formula needs a target left of '~', e.g. 'price ~ sqft + hood'.")
    sizes: dict[int, tuple[int, int]] = {}
    products = 0
    stack: list[tuple[ASTNode | Token, bool]] = [(tree.args[1], False)]
    while stack:
        node, ready = stack.pop()
        if not isinstance(node, ASTNode):
            sizes[id(node)] = (1, 1)
            continue
        if not ready:
            stack.append((node, True))
            stack.extend((arg, False) for arg in node.args)
            continue
        args = [sizes[id(arg)] for arg in node.args]
        symbol = node.operator.symbol
        if symbol == "~":
            raise FormulaError("The formula has more than one '~'.")
        if symbol == ".":
            size = (dot_columns, 1)
        elif symbol == "**":
            power = node.args[1]
            digits = power.token if isinstance(power, Token) else ""
            # a whole number of at most 3 ASCII digits: int() of thousands of digits raises
            if not (digits.isascii() and digits.isdigit() and len(digits) <= 3 and 1 <= int(digits) <= MAX_POWER):
                raise FormulaError(f"The right side of '**' must be a whole number from 1 to {MAX_POWER}.")
            (terms, order), k = args[0], int(digits)
            products += terms**k if terms < 2 * MAX_PRODUCTS else MAX_PRODUCTS + 1
            size = (min(terms**k, 2**terms), order * k)
        elif symbol in (":", "*"):
            (a, oa), (b, ob) = args
            products += a * b
            size = (a * b + (a + b if symbol == "*" else 0), oa + ob)
        elif node.operator.arity == 1:
            size = args[0] if symbol == "+" else (0, 0)
        else:
            size = (args[0][0] + (args[1][0] if symbol == "+" else 0), max(args[0][1], args[1][1]))
        if size[0] > max_terms:
            raise FormulaError(f"The formula expands to more than {max_terms} terms, the limit.")
        if size[1] > MAX_ORDER:
            raise FormulaError(f"The formula has a term of more than {MAX_ORDER} factors, the limit.")
        if products > MAX_PRODUCTS:
            raise FormulaError(f"The formula's products ('*', ':', '**') expand to more than {MAX_PRODUCTS} combinations.")
        sizes[id(node)] = size
