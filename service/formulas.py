"""The formula grammar: what a formula may say, read before any library evaluates it.

A formula is data, never code. formulaic, which builds the design, evaluates every term
that looks like a call as Python (``I(__import__('os').getpid())`` would run), so a
formula reaches it only after ``read_formula`` has checked every piece of it:

1. its length (a parameter, the service's setting) and its nesting depth;
2. formulaic's tokenizer (a linear scan that evaluates nothing) splits it into names,
   numbers, operators and call-like pieces; each piece is checked: names must be
   columns of the table, numbers plain integers, operators those of the grammar
   (``~ + - : * ** .``, parentheses), and each call-like piece is parsed with Python's
   ``ast`` and walked against ``service.expressions``' whitelist;
3. formulaic's parser builds the operator tree, whose size is bounded here *before*
   its terms are expanded: formulaic enumerates ``len(a)**k`` products for ``a**k``
   and doubles the terms with each ``*``, so ``(x1 + ... + x9)**9`` or ``x1*...*x30``
   would run for minutes;
4. only then does formulaic expand the terms (``.``, ``*``, ``**``, ``-``).

Anything else is ``InvalidInput`` naming ``formula``, in a sentence that names the piece.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from formulaic.errors import FormulaicError
from formulaic.parser import DefaultFormulaParser
from formulaic.parser.algos.tokenize import tokenize
from formulaic.parser.types import ASTNode, Factor, Token

from service.errors import InvalidInput, excerpt
from service.expressions import MAX_NESTING, Expression, FormulaError, read_expression, suggest

#: A formula longer than this is refused before anything else reads it (``read_formula``'s default).
MAX_LENGTH = 10_000
#: Bounds on what the operators may expand to, checked on the operator tree before formulaic
#: expands it: terms on the right side, factors in one term, products formulaic enumerates.
MAX_TERMS = 2_000
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
PARSER = DefaultFormulaParser(feature_flags={"twosided"})


@dataclass(frozen=True)
class Formula:
    """A formula as read: its targets, its right side's terms, and whether it has an intercept.

    ``text`` is what the client sent; ``expanded`` is the same formula with ``.`` and the
    operators expanded into its terms (``price ~ sqft + hood + sqft:hood``), which is what
    the design is built from and what the answer reports. ``terms`` are the right side's
    terms without the intercept, in R's order (by degree, then as written), each a tuple
    of its factors. ``factors`` maps every factor (targets too) to what it uses.
    """

    text: str
    expanded: str
    targets: tuple[str, ...]
    terms: tuple[tuple[str, ...], ...]
    intercept: bool
    factors: dict[str, Expression]

    @property
    def target_columns(self) -> tuple[str, ...]:
        """The columns the targets are computed from."""
        return unique(column for target in self.targets for column in self.factors[target].columns)

    @property
    def term_columns(self) -> tuple[str, ...]:
        """The columns the right side uses, in order of first use."""
        return unique(column for term in self.terms for factor in term for column in self.factors[factor].columns)

    @property
    def term_names(self) -> tuple[str, ...]:
        """The right side's terms as R and formulaic name them (``sqft:hood``)."""
        return tuple(":".join(term) for term in self.terms)


def read_formula(
    text: str,
    columns: Sequence[str],
    *,
    weight: str | None = None,
    by: str | None = None,
    max_length: int = MAX_LENGTH,
    max_terms: int = MAX_TERMS,
) -> Formula:
    """Read a formula against a table's column names, or raise ``InvalidInput`` naming ``formula``."""
    try:
        return _read(text, columns, weight, by, max_length, max_terms)
    except FormulaError as error:
        raise InvalidInput(str(error), "formula") from None


def _read(text: str, columns: Sequence[str], weight: str | None, by: str | None, max_length: int, max_terms: int) -> Formula:
    if len(text) > max_length:
        raise FormulaError(f"The formula has {len(text)} characters, more than the limit of {max_length}.")
    text = text.strip()
    if not text:
        raise FormulaError("The formula is empty; write it as 'target ~ terms', e.g. 'price ~ sqft + hood'.")
    check_nesting(text)
    if text[-1] in OPERATOR_CHARACTERS:
        raise FormulaError(f"The formula ends with {text[-1]!r}; write terms after it, e.g. 'price ~ sqft + hood'.")
    known = frozenset(columns)
    try:
        tokens = list(tokenize(text))
    except FormulaicError:
        raise FormulaError(f"The formula {excerpt(text)!r} has an unclosed backtick, quote or parenthesis.") from None
    factors, used, dot = read_tokens(tokens, known, columns)
    available = [c for c in columns if c not in used and c != weight and c != by] if dot else []
    try:
        tree = PARSER.get_ast(text)
        check_tree(tree, len(available), max_terms)
        structured = PARSER.get_terms(text, context={"__formulaic_variables_available__": available})
    except FormulaicError as error:
        reason = str(error).splitlines()[0].rstrip(".")
        raise FormulaError(f"The formula {excerpt(text)!r} is not a formula of the grammar: {reason}.") from None
    for name in available:
        factors.setdefault(name, Expression(name, None, (name,), 0, True))
    targets = tuple(read_target(term, factors) for term in structured.lhs)
    intercept, terms = read_terms(structured.rhs, factors)
    if not terms and not intercept:
        raise FormulaError(f"The formula {excerpt(text)!r} has no terms and no intercept: there is nothing to fit.")
    return Formula(text, expand(targets, terms, intercept, factors), targets, terms, intercept, factors)


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


def read_tokens(tokens: list[Token], known: frozenset[str], columns: Sequence[str]) -> tuple[dict[str, Expression], set[str], bool]:
    """Check every token; answer the factors read, the columns they use, and whether ``.`` occurs."""
    tildes = sum(t.token.count("~") for t in tokens if t.kind is Token.Kind.OPERATOR)
    if tildes != 1:
        raise FormulaError(
            "The formula needs exactly one '~', with the target(s) on its left and the terms on its right "
            f"(e.g. 'price ~ sqft + hood'); it has {tildes}."
        )
    factors: dict[str, Expression] = {}
    used: set[str] = set()
    dot = False
    right = False
    for token in tokens:
        piece = token.token
        if token.kind is Token.Kind.OPERATOR:
            check_operator(piece, right)
            right = right or "~" in piece
        elif token.kind is Token.Kind.CONTEXT:
            if piece not in "()":
                raise FormulaError(f"The formula uses {piece!r}; subscripts are not part of the grammar.")
        elif token.kind is Token.Kind.VALUE:
            if piece == ".":
                if not right:
                    raise FormulaError("The formula has '.' left of '~'; '.' stands for columns on the right side only.")
                dot = True
            elif not piece.isdigit():
                what = "a string literal" if piece[:1] in "'\"" else "the number " + repr(excerpt(piece))
                raise FormulaError(f"The formula uses {what}; only columns, functions of them and whole numbers are allowed.")
        elif token.kind is Token.Kind.NAME:
            if piece not in known:
                raise FormulaError(unknown_column(piece, columns))
            factors[piece] = Expression(piece, None, (piece,), 0, True)
            used.add(piece)
        elif token.source and token.source_start is not None and token.source[token.source_start] == "{":
            raise FormulaError(f"The formula quotes Python code in braces ({{{excerpt(piece)}}}); a formula is never evaluated as code.")
        else:
            expression = read_expression(piece, known, columns, target=not right)
            factors[expression.text] = expression
            used.update(expression.columns)
    return factors, used, dot


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
            if not isinstance(power, Token) or not power.token.isdigit() or not 1 <= int(power.token) <= MAX_POWER:
                raise FormulaError(f"The right side of '**' must be a whole number from 1 to {MAX_POWER}.")
            (terms, order), k = args[0], int(power.token)
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


def read_target(term: object, factors: dict[str, Expression]) -> str:
    """The name of one target (a term of the left side): a single factor that is not a number."""
    found = [factor for factor in getattr(term, "factors", ())]
    if len(found) != 1 or found[0].eval_method is Factor.EvalMethod.LITERAL:
        raise FormulaError(f"The formula's left side has {str(term)!r}; each target is one column or a function of one.")
    return expression_of(found[0], factors).text


def read_terms(rhs: Iterable[object], factors: dict[str, Expression]) -> tuple[bool, tuple[tuple[str, ...], ...]]:
    """Whether the right side keeps the intercept, and its other terms in R's order (by degree, stable)."""
    intercept = False
    terms: list[tuple[str, ...]] = []
    for term in rhs:
        found = list(getattr(term, "factors", ()))
        if len(found) == 1 and found[0].eval_method is Factor.EvalMethod.LITERAL and found[0].expr == "1":
            intercept = True
            continue
        if any(f.eval_method is Factor.EvalMethod.LITERAL for f in found):
            raise FormulaError(f"The formula's term {str(term)!r} has a number in it; numbers may only be powers.")
        terms.append(tuple(expression_of(f, factors).text for f in found))
    terms.sort(key=len)
    return intercept, tuple(terms)


def expression_of(factor: Factor, factors: dict[str, Expression]) -> Expression:
    """The checked expression of one of formulaic's factors (both name Python code as formulaic formats it)."""
    if factor.expr not in factors:
        raise FormulaError(f"The formula's factor {excerpt(factor.expr)!r} could not be matched to what was read.")
    return factors[factor.expr]


def expand(targets: Sequence[str], terms: Sequence[tuple[str, ...]], intercept: bool, factors: dict[str, Expression]) -> str:
    """Write the formula out with every term explicit (names that are not identifiers in backticks)."""

    def quote(factor: str) -> str:
        plain = factors[factor].plain and not IDENTIFIER.fullmatch(factor)
        return f"`{factor}`" if plain else factor

    right = " + ".join(":".join(quote(f) for f in term) for term in terms)
    if not intercept:
        right = right + " - 1" if right else "0"
    return " + ".join(quote(t) for t in targets) + " ~ " + (right or "1")


IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def unknown_column(name: str, columns: Sequence[str]) -> str:
    """The sentence for a name that is not a column, with a "did you mean" when one is close."""
    message = f"The formula uses {excerpt(name)!r}, which is not a column of the table"
    close = suggest(name, columns)
    return message + (f"; did you mean {close!r}?" if close else ".")


def unique(items: Iterable[str]) -> tuple[str, ...]:
    """Items in order of first appearance, each once."""
    return tuple(dict.fromkeys(items))
