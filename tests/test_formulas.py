"""The formula grammar: every statement of the contract's Formulas paragraph, and hostile formulas that never run."""

from __future__ import annotations

import builtins
import string
from collections.abc import Iterator

import formulaic
import pandas as pd
import pytest

from service.errors import InvalidInput
from service.formulas import read_formula

COLUMNS = ["y", "y2", "x", "z", "hood", "w", "store", "floor area", "Sepal.Length", *string.ascii_lowercase[:20]]
COLUMNS = list(dict.fromkeys(COLUMNS))
CALLS: list[object] = []


@pytest.fixture(autouse=True)
def record_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """A builtin ``sentinel`` that records a call: evaluating a hostile formula would call it."""
    CALLS.clear()
    monkeypatch.setattr(builtins, "sentinel", lambda *args: CALLS.append(args) or 1.0, raising=False)
    yield CALLS
    assert CALLS == [], "a formula was evaluated"


def read(text: str, **options: object) -> tuple[tuple[str, ...], tuple[str, ...], bool, str]:
    formula = read_formula(text, COLUMNS, **options)  # type: ignore[arg-type]
    return formula.targets, formula.term_names, formula.intercept, formula.expanded


GRAMMAR = [
    ("plus", "y ~ x + z", ("x", "z"), True),
    ("minus removes a term", "y ~ x + z - z", ("x",), True),
    ("minus one removes the intercept", "y ~ x - 1", ("x",), False),
    ("plus zero removes the intercept", "y ~ x + 0", ("x",), False),
    ("colon is an interaction", "y ~ x:z", ("x:z",), True),
    ("star is both and the interaction", "y ~ x*z", ("x", "z", "x:z"), True),
    ("power is all pairs", "y ~ (x + z + hood)**2", ("x", "z", "hood", "x:z", "x:hood", "z:hood"), True),
    ("terms by degree, then as written", "y ~ x:z + hood + x", ("hood", "x", "x:z"), True),
    ("C", "y ~ C(x)", ("C(x)",), True),
    ("I with arithmetic", "y ~ I(x**2 + 2*z - x/3)", ("I(x ** 2 + 2 * z - x / 3)",), True),
    ("powers of columns", "y ~ I(x**-0.5) + I((x + 1)**z)", ("I(x ** (-0.5))", "I((x + 1) ** z)"), True),
    ("log family", "y ~ log(x) + log2(x) + log10(x) + exp(x) + sqrt(x) + abs(x)",
     ("log(x)", "log2(x)", "log10(x)", "exp(x)", "sqrt(x)", "abs(x)"), True),
    ("functions nest in arithmetic", "y ~ log(x + 1) + I(sqrt(x) * 2)", ("log(x + 1)", "I(sqrt(x) * 2)"), True),
    ("poly", "y ~ poly(x, 3)", ("poly(x, 3)",), True),
    ("poly degree by keyword", "y ~ poly(x, degree=2)", ("poly(x, degree=2)",), True),
    ("center and scale", "y ~ center(x) + scale(z)", ("center(x)", "scale(z)"), True),
    ("backticks", "y ~ `floor area` + log(`floor area`)", ("floor area", "log(`floor area`)"), True),
    ("R names with dots", "y ~ Sepal.Length", ("Sepal.Length",), True),
]


@pytest.mark.parametrize(("text", "terms", "intercept"), [g[1:] for g in GRAMMAR], ids=[g[0] for g in GRAMMAR])
def test_grammar(text: str, terms: tuple[str, ...], intercept: bool) -> None:
    targets, read_terms, read_intercept, _ = read(text)
    assert targets == ("y",)
    assert read_terms == terms
    assert read_intercept is intercept


def test_dot_is_every_column_not_used_elsewhere_and_not_weight_or_by() -> None:
    formula = read_formula("y ~ . + log(x)", ["y", "x", "z", "w", "store", "hood"], weight="w", by="store")
    assert formula.term_names == ("z", "hood", "log(x)")
    assert formula.expanded == "y ~ z + hood + log(x)"


def test_several_targets_and_a_function_of_the_target() -> None:
    assert read("y + y2 ~ x")[0] == ("y", "y2")
    targets, _, _, expanded = read("log(y) ~ x")
    assert targets == ("log(y)",)
    assert expanded == "log(y) ~ x"


def test_expanded_formula_quotes_names_that_are_not_identifiers() -> None:
    assert read("y ~ . - 1", weight="w")[3].startswith("y ~ y2 + x + z + hood + store + `floor area` + Sepal.Length")


def test_expanded_formula_reads_back_the_same() -> None:
    for text in ["y ~ x*hood + poly(z, 2) - 1", "log(y) ~ (x + z)**2 + `floor area`", "y ~ ."]:
        first = read_formula(text, COLUMNS, weight="w")
        again = read_formula(first.expanded, COLUMNS)
        assert (again.targets, again.terms, again.intercept, again.expanded) == (
            first.targets, first.terms, first.intercept, first.expanded)


def test_unknown_column_says_did_you_mean() -> None:
    with pytest.raises(InvalidInput) as caught:
        read_formula("price ~ sqtf", ["price", "sqft"])
    assert caught.value.field == "formula"
    assert "'sqtf'" in caught.value.detail and "did you mean 'sqft'?" in caught.value.detail
    with pytest.raises(InvalidInput, match="did you mean 'Price'"):
        read_formula("price ~ sqft", ["Price", "sqft"])
    with pytest.raises(InvalidInput, match=r"not a column of the table\.$"):
        read_formula("price ~ zzzzzz", ["price", "sqft"])


def test_did_you_mean_does_bounded_work_on_huge_names() -> None:
    huge = "q" * 9_000
    with pytest.raises(InvalidInput, match=r"not a column of the table\.$"):
        read_formula(f"y ~ {huge}", ["y", huge + "r"])


def test_length_limit_is_a_parameter_and_comes_first() -> None:
    read_formula("y ~ x", COLUMNS, max_length=5)
    with pytest.raises(InvalidInput, match="6 characters, more than the limit of 5"):
        read_formula("y ~ x ", COLUMNS, max_length=5)
    with pytest.raises(InvalidInput, match="more than the limit of 10000"):
        read_formula("y ~ " + "__import__('os') + " * 600, COLUMNS)


def test_a_column_named_like_a_function_is_refused_where_both_are_used() -> None:
    assert read_formula("y ~ log", ["y", "log"]).term_names == ("log",)
    with pytest.raises(InvalidInput, match="also a function"):
        read_formula("y ~ log(log)", ["y", "log"])


def test_formulaic_alone_would_evaluate_code() -> None:
    """The reason for the grammar: formulaic runs a call-like term as Python (here the sentinel)."""
    formulaic.model_matrix("y ~ I(sentinel())", pd.DataFrame({"y": [1.0, 2.0]}), context={})
    assert CALLS, "formulaic no longer evaluates Python in terms; the grammar's docstring is out of date"
    CALLS.clear()


WIDE = [f"c{i}" for i in range(40)]
HOSTILE = [
    # code execution
    "y ~ I(__import__('os').getpid())", "y ~ __import__('os').system('true')", "y ~ I(sentinel())",
    "y ~ sentinel(x)", "y ~ log(sentinel())", "y ~ {sentinel()}", "y ~ x + {x.__class__}", "y ~ I(eval('sentinel()'))",
    "y ~ I(exec('sentinel()'))", "y ~ I(open('/etc/passwd'))", "y ~ I(globals())", "y ~ I(getattr(x, 'real'))",
    "sentinel() ~ x", "log(sentinel()) ~ x", "y ~ C(x, sentinel())", "y ~ poly(x, sentinel())", "y ~ I(vars())",
    # attribute access and dunder names
    "y ~ I(x.real)", "y ~ log(x).__class__", "y ~ I(x.__class__.__mro__)", "y ~ I((1).__class__)", "y ~ np.log(x)",
    "y ~ I(__builtins__)", "y ~ __class__", "y ~ I(__spec__)", "y ~ I(__FORMULAIC_CONTEXT__)", "y ~ I(__FORMULAIC_STATE__)",
    # subscripts and slices
    "y ~ x[0]", "y ~ I(x[0])", "y ~ I(x[::-1])", "y ~ log(x)[0]",
    # lambdas and comprehensions
    "y ~ I((lambda: sentinel())())", "y ~ I(lambda: 1)", "y ~ I([sentinel() for _ in x])", "y ~ I({k: 1 for k in x})",
    "y ~ I(sum(sentinel() for v in x))", "y ~ I({v for v in x})",
    # strings
    "y ~ 'x'", "y ~ I('x')", "y ~ C(x, 'Treatment')", "y ~ I(b'x')", 'y ~ x + "x"', "y ~ I(f'{sentinel()}')",
    # builtins and other functions
    "y ~ I(len(x))", "y ~ abs(x) + max(x)", "y ~ I(print(x))", "y ~ I(breakpoint())", "y ~ I(input())", "y ~ exit()",
    "y ~ I(type(x))", "y ~ lag(x)", "y ~ bs(x)", "y ~ Q('x')", "y ~ I(log)",
    # walrus, starred and keyword arguments
    "y ~ I((v := x))", "y ~ log(*x)", "y ~ log(**{'x': x})", "y ~ log(x, base=2)", "y ~ C(x, contrasts=1)",
    "y ~ poly(x, degree=2, raw=True)", "y ~ scale(x, scale=False)", "y ~ C(x, levels=['a'])",
    # arity, degree and placement
    "y ~ log(x, 2)", "y ~ poly(x)", "y ~ poly(x, 2.5)", "y ~ poly(x, True)", "y ~ poly(x, 100)", "y ~ poly(x, -1)",
    "y ~ C(log(x))", "y ~ I(poly(x, 2))", "y ~ log(center(x))", "scale(y) ~ x", "C(y) ~ x",
    # Python operators and constants
    "y ~ I(x if x else 1)", "y ~ I(x == 1)", "y ~ I(x and x)", "y ~ I(x @ x)", "y ~ I(x // 2)", "y ~ I(x % 2)",
    "y ~ I(x ^ 2)", "y ~ I(~x)", "y ~ I(not x)", "y ~ I(True)", "y ~ I(None)", "y ~ I(1j)", "y ~ I(...)",
    "y ~ I([x])", "y ~ I((x, x))", "y ~ I(await x)", "y ~ I((yield x))", "y ~ I(x << 1)",
    # formula operators outside the grammar
    "y ~ x / z", "y ~ x %in% z", "y ~ x | z", "y ~ x ^ 2", "y ~ x[y ~ z]", "y ~ x ~ z", "y ~ x == z", "y ~ x & z",
    "y ~ x @ z", "y ~ x ; z", "y ~ x, z",
    # structure
    "", "   ", "y", "~ x", "y ~", ". ~ x", "y - x ~ z", "y:x ~ z", "2 ~ x", "y ~ 2", "y ~ 2:x", "y ~ x + 1.5",
    "y ~ 0", "y ~ -1", "y ~ log(x", "y ~ `x", "y ~ x\x00", "y ~ \uff58", "y ~ I(x * 1" + "0" * 5000 + ")",
    # enormous and deeply nested
    "y ~ " + " + ".join(["x"] * 3000), "y ~ " + "(" * 40 + "x" + ")" * 40, "y ~ I(" + "(" * 40 + "x" + ")" * 40 + ")",
    "y ~ I(" + "-" * 5000 + "x)", "y ~ I(" + "+".join(["x"] * 2500) + ")", "y ~ " + "log(" * 40 + "x" + ")" * 40,
    "y ~ " + "*".join(WIDE[:20]), "y ~ (" + " + ".join(WIDE[:10]) + ")**10", "y ~ (x + z)**11", "y ~ x**1000000000",
    "y ~ " + ":".join(WIDE[:20]), "y ~ (" + " + ".join(WIDE) + ")**3", "y ~ " + "*".join(["(x + z)"] * 16),
    "y ~ I(2)", "y ~ x:I(0.5)", "I(1) ~ x", "y ~ log(10)", "y ~ I(x * 2 ** 2 ** 100)", "y ~ I(x + 9 ** 9 ** 9)", "y ~ I((x + 10 ** 1000) ** 1000)", "y ~ I(x ** (2 ** 99))",
    "y ~ x**" + "9" * 5000, "y ~ (x + z)**" + "0" * 4000 + "2", "y ~ " + "1" + "0" * 5000, "y ~ x**\u00b2",
]


@pytest.mark.parametrize("text", HOSTILE, ids=[f"{i:03d}" for i in range(len(HOSTILE))])
def test_hostile_formula_is_refused_without_running(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_formula(text, [*COLUMNS, *WIDE], weight="w")
    assert caught.value.field == "formula"
    detail = caught.value.detail
    assert detail[:1].isupper() and detail.rstrip()[-1] in ".?"
    assert len(detail) < 600


def test_hostile_corpus_is_large() -> None:
    assert len(HOSTILE) >= 100


def test_a_column_name_cannot_smuggle_a_term_in_through_the_dot() -> None:
    smuggler = "a` + I(sentinel()) + `b"
    with pytest.raises(InvalidInput, match="backtick") as caught:
        read_formula("y ~ .", ["y", "x", smuggler])
    assert caught.value.field == "formula"
    assert read_formula("y ~ . - 1", ["y", "odd name", "x"]).expanded == "y ~ `odd name` + x - 1"


def test_a_formula_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidInput, match="must be a string") as caught:
        read_formula(["y ~ x"], COLUMNS)  # type: ignore[arg-type]
    assert caught.value.field == "formula"


def test_a_column_named_like_the_intercept_is_refused() -> None:
    with pytest.raises(InvalidInput, match="'Intercept'"):
        read_formula("y ~ Intercept", ["y", "Intercept"])


@pytest.mark.parametrize(
    "text",
    ["y ~ log(a) + `log(a)`:h + a", "y ~ . + log(a)", "y ~ `log(a)` + log(a) + h", "y ~ (. + log(a)):h", "`log(a)` ~ a + log(a)"],
)
def test_a_column_named_as_an_expression_of_the_same_formula_is_refused(text: str) -> None:
    # formulaic keeps one of the two (by their text): the design would not be the one the answer's formula says
    with pytest.raises(InvalidInput, match=r"both a column named 'log\(a\)' and the expression log\(a\)") as caught:
        read_formula(text, ["y", "a", "h", "log(a)"])
    assert caught.value.field == "formula"


def test_a_column_named_as_an_expression_is_read_when_the_formula_uses_it_one_way() -> None:
    columns = ["y", "a", "h", "log(a)"]
    assert read_formula("y ~ `log(a)` + a", columns).factors["log(a)"].plain
    assert not read_formula("y ~ log(a) + h", columns).factors["log(a)"].plain


@pytest.mark.parametrize(("name", "meaning"), [("1", "the intercept"), (".", "every other column")])
@pytest.mark.parametrize("text", ["y ~ .", "y ~ a + `{name}`"])
def test_a_column_named_1_or_dot_is_refused_where_the_formula_uses_it(name: str, meaning: str, text: str) -> None:
    # formulaic reads `1` as the intercept and `.` as the dot, backticks or not: the column would vanish
    with pytest.raises(InvalidInput, match=f"the column '{name}', a name formulaic reads as {meaning}") as caught:
        read_formula(text.format(name=name), ["y", "a", name])
    assert caught.value.field == "formula"
    assert read_formula("y ~ a", ["y", "a", name]).term_columns == ("a",)
    assert read_formula("y ~ .", ["y", "a", "0"]).term_columns == ("a", "0")
