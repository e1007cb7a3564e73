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
3. formulaic's parser builds the operator tree, whose expansion is bounded by
   ``service.formula_operators`` *before* it happens (formulaic enumerates products);
4. only then does formulaic expand the terms (``.``, ``*``, ``**``, ``-``);
5. the columns it uses may not have a backtick or a backslash in their names, nor be
   ``Intercept`` (``.`` puts the table's names into the formula unchecked by its grammar,
   and the expanded text, which the answer reports and a ``model`` sends back, quotes them
   in backticks).

formulaic then builds a design from the very terms its parser read here (``Formula.parsed``,
``Formula.structured``), never from a text written out again: no column name can close its
backticks and smuggle a term into what is evaluated, and a fit does not read its formula a
second time (reading the expanded text back took 9 ms for ``y ~ .`` on 100 columns, and
formulaic parsed it once more). A design's state (a fit's own ``test`` rows, a ``model``
sent back) is read from its JSON like any formula, every check included. A factor must be
what its expression says (a column, or a call), and the names ``1`` and ``.``, which
formulaic reads as the intercept and the dot even in backticks, are refused as columns.

Anything else is ``InvalidInput`` naming ``formula``, in a sentence that names the piece.
Costs: formulaic's tokenizer copies each token per character (quadratic in the longest
token) and its parser unions term sets pairwise (quadratic in the number of terms); the
length limit and ``max_terms`` bound both (a 10,000-character formula reads in ~20 ms).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from formulaic import Formula as FormulaicFormula
from formulaic.errors import FormulaicError
from formulaic.formula import SimpleFormula
from formulaic.parser import DefaultFormulaParser
from formulaic.parser.algos.tokenize import tokenize
from formulaic.parser.types import Factor, Term, Token
from formulaic.utils.layered_mapping import LayeredMapping

from service.errors import InvalidInput, describe, excerpt
from service.expressions import Expression, FormulaError, read_expression, suggest
from service.formula_operators import OPERATOR_CHARACTERS, check_nesting, check_operator, check_tree

#: A formula longer than this is refused before anything else reads it (``read_formula``'s default).
MAX_LENGTH = 10_000
#: A design's formula (``expanded``, in a ``model`` or a fit's own ``test`` rows) is read up to this length:
#: ``.`` on a wide table writes out longer than any formula a client may send.
MAX_EXPANDED = 200_000
#: At most this many terms on the right side (``read_formula``'s default; the service passes max_features).
MAX_TERMS = 2_000
PARSER = DefaultFormulaParser(feature_flags={"twosided"})
#: Column names formulaic's parser reads as something else even in backticks.
RESERVED = {"1": "the intercept", ".": "every other column"}


@dataclass(frozen=True)
class Parsed:
    """formulaic's own terms of a formula, as its parser read them: by target, by term (factor names), the intercept's."""

    targets: dict[str, Term]
    terms: dict[tuple[str, ...], Term]
    intercept: Term | None


@dataclass(frozen=True)
class Formula:
    """A formula as read: its targets, its right side's terms, and whether it has an intercept.

    ``text`` is what the client sent; ``expanded`` is the same formula with ``.`` and the
    operators expanded into its terms (``price ~ sqft + hood + sqft:hood``), which is what
    the answer reports and a ``model`` sends back. ``terms`` are the right side's terms
    without the intercept, in R's order (by degree, then as written), each a tuple of its
    factors. ``factors`` maps every factor (targets too) to what it uses. ``parsed`` holds
    formulaic's own terms, which designs are built from (``structured``).
    """

    text: str
    expanded: str
    targets: tuple[str, ...]
    terms: tuple[tuple[str, ...], ...]
    intercept: bool
    factors: dict[str, Expression]
    parsed: Parsed = field(compare=False, repr=False)

    def structured(self, terms: Sequence[tuple[str, ...]] | None = None, *, targets: bool = False) -> FormulaicFormula:
        """formulaic's formula of the right side (``terms``, some of the formula's, or all), with the targets if asked.

        Built from the terms formulaic's parser read in ``read_formula``: formulaic reads no
        text again, so what it evaluates is what was checked. The intercept's term comes
        first; formulaic orders the others by degree, as ``terms`` are.
        """
        kept = self.terms if terms is None else terms
        head = [] if self.parsed.intercept is None else [self.parsed.intercept]
        right = SimpleFormula([*head, *(self.parsed.terms[term] for term in kept)])
        if not targets:
            return right
        return FormulaicFormula(lhs=SimpleFormula([self.parsed.targets[t] for t in self.targets]), rhs=right)

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
    if not isinstance(text, str):
        raise InvalidInput(f"'formula' must be a string. Got {describe(text)} instead.", "formula")
    try:
        return _read(text, columns, weight, by, max_length, max_terms)
    except FormulaError as error:
        raise InvalidInput(str(error), "formula") from None


def _read(
    text: str,
    columns: Sequence[str],
    weight: str | None,
    by: str | None,
    max_length: int,
    max_terms: int,
) -> Formula:
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
    clash = sorted(RESERVED.keys() & set(available))
    if clash:
        raise FormulaError(reserved(clash[0]))
    try:
        # formulaic's parse (tokens, tree, terms) in its own steps, so that the tree is checked
        # before its terms are expanded, and the text is tokenized and parsed once, not twice
        context = LayeredMapping({"__formulaic_variables_available__": available}, PARSER.context)
        tree = PARSER.get_ast_from_tokens(PARSER.get_tokens_from_formula(text, context=context), context=context)
        check_tree(tree, len(available), max_terms)
        structured = PARSER.get_terms_from_ast(tree, context=context)
    except FormulaicError as error:
        reason = str(error).splitlines()[0].rstrip(".")
        raise FormulaError(f"The formula {excerpt(text)!r} is not a formula of the grammar: {reason}.") from None
    for name in available:
        factors.setdefault(name, Expression(name, None, (name,), 0, True))
    targets = tuple(read_target(term, factors) for term in structured.lhs)
    intercept_term, parsed_terms = read_terms(structured.rhs, factors)
    intercept, terms = intercept_term is not None, tuple(parsed_terms)
    parsed = Parsed(dict(zip(targets, structured.lhs, strict=True)), parsed_terms, intercept_term)
    if not terms and not intercept:
        raise FormulaError(f"The formula {excerpt(text)!r} has no terms and no intercept: there is nothing to fit.")
    # only the factors that remain: a term removed with '-' must not constrain the columns
    kept = {name: factors[name] for name in (*targets, *(f for term in terms for f in term))}
    formula = Formula(text, expand(targets, terms, intercept, kept), targets, terms, intercept, kept, parsed)
    check_column_names(formula)
    return formula


def check_column_names(formula: Formula) -> None:
    """Refuse a column whose name could break out of its backticks in the expanded formula, or is the intercept's."""
    for name in (*formula.target_columns, *formula.term_columns):
        if "`" in name or "\\" in name:
            raise FormulaError(f"The formula uses the column {excerpt(name)!r}, whose name has a backtick or a backslash; rename it.")
        if name == "Intercept":
            raise FormulaError("The formula uses a column named 'Intercept', the name of the intercept's column; rename it.")


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
            elif not (piece.isascii() and piece.isdigit()):
                what = "a string literal" if piece[:1] in "'\"" else "the number " + repr(excerpt(piece))
                raise FormulaError(f"The formula uses {what}; only columns, functions of them and whole numbers are allowed.")
        elif token.kind is Token.Kind.NAME:
            if piece not in known:
                raise FormulaError(unknown_column(piece, columns))
            if piece in RESERVED:
                raise FormulaError(reserved(piece))
            factors[piece] = Expression(piece, None, (piece,), 0, True)
            used.add(piece)
        elif token.source and token.source_start is not None and token.source[token.source_start] == "{":
            raise FormulaError(f"The formula quotes Python code in braces ({{{excerpt(piece)}}}); a formula is never evaluated as code.")
        else:
            expression = read_expression(piece, known, columns, target=not right)
            factors[expression.text] = expression
            used.update(expression.columns)
    return factors, used, dot


def read_target(term: object, factors: dict[str, Expression]) -> str:
    """The name of one target (a term of the left side): a single factor that is not a number."""
    found = [factor for factor in getattr(term, "factors", ())]
    if len(found) != 1 or found[0].eval_method is Factor.EvalMethod.LITERAL:
        raise FormulaError(f"The formula's left side has {str(term)!r}; each target is one column or a function of one.")
    return expression_of(found[0], factors).text


def read_terms(rhs: Iterable[Term], factors: dict[str, Expression]) -> tuple[Term | None, dict[tuple[str, ...], Term]]:
    """The right side's intercept term (``None`` if it has none), and its other terms in R's order (by degree, stable).

    Each term is keyed by its factors' names and maps to formulaic's own ``Term``.
    """
    intercept = None
    terms: list[tuple[tuple[str, ...], Term]] = []
    for term in rhs:
        found = list(getattr(term, "factors", ()))
        if len(found) == 1 and found[0].eval_method is Factor.EvalMethod.LITERAL and found[0].expr == "1":
            intercept = term
            continue
        if any(f.eval_method is Factor.EvalMethod.LITERAL for f in found):
            raise FormulaError(f"The formula's term {str(term)!r} has a number in it; numbers may only be powers.")
        terms.append((tuple(expression_of(f, factors).text for f in found), term))
    terms.sort(key=lambda item: len(item[0]))
    return intercept, dict(terms)


def expression_of(factor: Factor, factors: dict[str, Expression]) -> Expression:
    """The checked expression of one of formulaic's factors (both name Python code as formulaic formats it).

    A factor is a column exactly when its expression is one: a column named as an expression
    of the same formula (``log(a)`` beside ``log(a)``) is one name for two things, which
    formulaic keeps only one of, so the design would not be the one ``expanded`` says.
    """
    expression = factors.get(factor.expr)
    if expression is None:
        raise FormulaError(f"The formula's factor {excerpt(factor.expr)!r} could not be matched to what was read.")
    if (factor.eval_method is Factor.EvalMethod.LOOKUP) != expression.plain:
        raise FormulaError(
            f"The formula uses both a column named {excerpt(factor.expr)!r} and the expression "
            f"{excerpt(factor.expr)}, which formulaic cannot tell apart; rename the column."
        )
    return expression


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


def reserved(name: str) -> str:
    """The sentence for a column the formula uses whose name formulaic reads as something else (``RESERVED``)."""
    return f"The formula uses the column {name!r}, a name formulaic reads as {RESERVED[name]} even in backticks; rename it."


def unique(items: Iterable[str]) -> tuple[str, ...]:
    """Items in order of first appearance, each once."""
    return tuple(dict.fromkeys(items))
