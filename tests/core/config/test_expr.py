"""Expressions compute what Python's math computes, and anything outside the whitelist is refused."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys

import pytest
import torch

from nnrun.config import expr
from nnrun.config.expr import ALLOWED, MAX_DEPTH, MAX_LENGTH, compile_expression
from nnrun.errors import ConfigError

# Each expression next to an independent scalar reference in plain Python (math, not torch).
CASES = {
    "x": lambda v: v,
    "x**2": lambda v: v**2,
    "-x + 2": lambda v: -v + 2,
    "+x": lambda v: v,
    "2*x - 1/x": lambda v: 2 * v - 1 / v,
    "x**0.5": lambda v: v**0.5,
    "2**x": lambda v: 2**v,
    "x % 0.3": lambda v: v % 0.3,
    "-x % 0.3": lambda v: -v % 0.3,
    "1 % x": lambda v: 1 % v,
    "(x + 1) * (x - 1)": lambda v: (v + 1) * (v - 1),
    "pi * x + e": lambda v: math.pi * v + math.e,
    "-2**2 * x": lambda v: -(2**2) * v,
    "2**-1 + x": lambda v: 2**-1 + v,
    "2**3**2 * x": lambda v: 2**3**2 * v,
    "1e-3 * x / 3": lambda v: 1e-3 * v / 3,
    "sin(cos(x))**2 + sqrt(abs(x - 0.5))": lambda v: (
        math.sin(math.cos(v)) ** 2 + math.sqrt(abs(v - 0.5))
    ),
    "sigmoid(3*x) * tanh(x)": lambda v: 1 / (1 + math.exp(-3 * v)) * math.tanh(v),
    "relu(x - 0.5) + relu(0.5 - x)": lambda v: max(v - 0.5, 0) + max(0.5 - v, 0),
    "log1p(exp(x)) - log(2)": lambda v: math.log1p(math.exp(v)) - math.log(2),
    "sign(x - 0.5) * expm1(x)": lambda v: math.copysign(1, v - 0.5) * math.expm1(v),
    "abs(x)": abs,
    "acos(x)": math.acos,
    "asin(x)": math.asin,
    "atan(x)": math.atan,
    "cos(x)": math.cos,
    "cosh(x)": math.cosh,
    "exp(x)": math.exp,
    "log(x)": math.log,
    "log10(x)": math.log10,
    "log2(x)": math.log2,
    "sin(x)": math.sin,
    "sinh(x)": math.sinh,
    "sqrt(x)": math.sqrt,
    "tan(x)": math.tan,
}


def test_every_allowed_function_has_a_reference_case():
    assert {name for name in expr.FUNCTIONS if f"{name}(" in " ".join(CASES)} == set(expr.FUNCTIONS)


@pytest.mark.parametrize("text", CASES)
def test_expression_matches_python_math(text):
    # Points in (0, 1) away from 0.5, where every function above is defined and sign() is not 0.
    x = torch.tensor([[0.05], [0.2], [0.45], [0.7], [0.95]], dtype=torch.float64)
    got = compile_expression(text)(x)
    want = torch.tensor([[CASES[text](v)] for v in x.flatten().tolist()], dtype=torch.float64)
    # float64 both ways; torch's and libm's transcendental functions differ by a few ulps at most
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("text,value", [("3", 3.0), ("2*pi", 2 * math.pi), ("-e**2", -(math.e**2))])
def test_constant_expression_gives_one_value_per_input(text, value):
    x = torch.zeros(4, 3, dtype=torch.float64)
    torch.testing.assert_close(
        compile_expression(text)(x), torch.full((4, 3), value, dtype=x.dtype)
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("text", ["x**2 + sin(x) - 1", "3", "x"])
def test_output_keeps_shape_and_dtype(text, dtype):
    x = torch.rand(2, 3, 4).to(dtype)
    y = compile_expression(text)(x)
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("text", ["x**2 + sin(x) - 1", "3"])
def test_output_stays_on_cuda(text):
    x = torch.rand(5, 1, device="cuda")
    y = compile_expression(text)(x)
    assert y.device == x.device
    torch.testing.assert_close(y.cpu(), compile_expression(text)(x.cpu()))


def test_identity_returns_a_new_tensor():
    x = torch.ones(3)
    y = compile_expression("x")(x)
    y += 1
    assert torch.equal(x, torch.ones(3))


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="floating-point"):
        compile_expression("x**2")(torch.arange(3))


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("x.real", "attribute access is not allowed: 'x.real'"),
        ("x.__class__.__bases__", "attribute access"),
        ("__import__('os').system('true')", "only named functions can be called"),
        ("__import__('os')", "unknown function '__import__'"),
        ("open('f')", "unknown function 'open'"),
        ("math.sin(x)", "write sin(...)"),
        ("x[0]", "indexing is not allowed: 'x[0]'"),
        ("y", "unknown name 'y'"),
        ("sin(x=1)", "keyword arguments are not allowed"),
        ("sin(x, x)", "sin takes one argument, got 2"),
        ("sin(*[x])", "unpacking is not allowed"),
        ("sin", "must be called"),
        ("x(2)", "'x' is not a function"),
        ("lambda: 1", "a lambda is not allowed"),
        ("(lambda: x)()", "only named functions can be called, not a lambda"),
        ("'x'", "the constant 'x' is not a number"),
        ("True + x", "the constant True is not a number"),
        ("None", "not a number"),
        ("1j * x", "not a number"),
        ("[i for i in x]", "a comprehension is not allowed"),
        ("[x]", "a list is not allowed"),
        ("{x: 1}", "a dict is not allowed"),
        ("(x, x)", "a tuple is not allowed"),
        ("f'{x}'", "an f-string is not allowed"),
        ("x if x > 0 else 0", "a conditional expression is not allowed"),
        ("x > 0", "a comparison is not allowed"),
        ("x and 1", "'and'/'or' is not allowed"),
        ("(y := x)", "an assignment expression is not allowed"),
        ("x^2", "use ** for powers"),
        ("x // 2", "the operator '//' is not allowed"),
        ("x @ x", "the operator '@' is not allowed"),
        ("~x", "the operator '~' is not allowed"),
        ("not x", "the operator 'not' is not allowed"),
        ("x +", "invalid syntax"),
        ("sin(x", "was never closed"),
        ("", "invalid expression"),
        ("x\0", "null bytes"),
        ("1" + "0" * 400 + " * x", "is too large"),
    ],
)
def test_forbidden_construct_is_named_in_the_error(text, fragment):
    with pytest.raises(ConfigError) as excinfo:
        compile_expression(text)
    message = str(excinfo.value)
    assert fragment in message
    assert message.startswith("invalid expression") and "Allowed are the variable x" in message


@pytest.mark.parametrize(
    "text,suggestion",
    [
        ("sinn(x)", "sin"),
        ("sqr(x)", "sqrt"),
        ("tanhh(x)", "tanh"),
        ("Sin(x)", "sin"),
        ("PI*x", "pi"),
    ],
)
def test_misspelled_names_get_a_suggestion(text, suggestion):
    with pytest.raises(ConfigError, match=f"did you mean '{suggestion}'\\?"):
        compile_expression(text)


def test_unrelated_name_gets_no_suggestion():
    with pytest.raises(ConfigError) as excinfo:
        compile_expression("foo(x)")
    assert "did you mean" not in str(excinfo.value)


def test_huge_exponents_are_inf_at_once():
    # Folding `9**9**9` as Python ints would run for hours: run it in a child we can time out.
    code = (
        "import torch; from nnrun.config.expr import compile_expression as c; "
        "print(c('9**9**9 + 0*x')(torch.ones(1)).item(), c('x**9**9**9')(torch.full((1,), 2.0)).item())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["inf", "inf"]


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("x+" * 600 + "x", "characters long; the limit is 1000"),
        ("sin(" * 120 + "x" + ")" * 120, "nests deeper than 100 levels"),
        ("-" * 900 + "x", "nests deeper than 100 levels"),
        ("x" + "**x" * 300, "nests deeper than 100 levels"),
        ("(" * 300 + "x" + ")" * 300, "too many nested parentheses"),
    ],
)
def test_oversized_expressions_are_refused(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        compile_expression(text)


def test_non_string_is_refused():
    with pytest.raises(ConfigError, match="must be a string"):
        compile_expression(3)


def test_calls_do_not_walk_the_syntax_tree_again(monkeypatch):
    f = compile_expression("sin(x)**2 + 3*x")

    def fail(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(expr._Compiler, "compile", fail)
    monkeypatch.setattr(expr.ast, "parse", fail)
    x = torch.linspace(0, 1, 7)
    torch.testing.assert_close(f(x), torch.sin(x) ** 2 + 3 * x)


def test_compiled_expression_pickles_as_its_text():
    f = pickle.loads(pickle.dumps(compile_expression("x**2 + 1")))
    assert repr(f) == "Expression('x**2 + 1')"
    torch.testing.assert_close(f(torch.tensor([2.0])), torch.tensor([5.0]))


def test_surrounding_blanks_are_ignored():
    torch.testing.assert_close(
        compile_expression("  x + 1 \n")(torch.ones(2)), torch.full((2,), 2.0)
    )


# --- Messages in full and the limits' edges ---------------------------------------------------------


@pytest.mark.parametrize(
    "text,problem",
    [
        ("x^2", "the operator '^' is not allowed: 'x^2' (use ** for powers)."),
        ("x & 2", "the operator '&' is not allowed: 'x & 2'."),
        ("x @ x", "the operator '@' is not allowed: 'x @ x'."),
        ("x if x else x", "a conditional expression is not allowed: 'x if x else x'."),
        ("sine(x)", "unknown function 'sine'; did you mean 'sin'?"),
        ("X", "unknown name 'X' (the input variable is x); did you mean 'x'?"),
        ("pi(x)", "'pi' is not a function: 'pi(x)'."),
        ("sin", "the function 'sin' must be called, as in sin(x)."),
        ("sin(x, x)", "sin takes one argument, got 2: 'sin(x, x)'."),
        ("sin(x=1)", "keyword arguments are not allowed: 'sin(x=1)'."),
        # what is called, when it is not a name, by its syntax's name
        ("(x+1)(x)", "only named functions can be called, not BinOp: 'x+1'."),
        ("sin(x)(x)", "only named functions can be called, not Call: 'sin(x)'."),
        # syntax without a description of its own is named by its syntax's name
        ("(yield from x)", "YieldFrom is not allowed: 'yield from x'."),
        ("x + * 2", "invalid syntax at column 5."),
        ("(x", "'(' was never closed at column 1."),
        ("1" + "0" * 400, "the number 10000000000000000000... is too large."),
    ],
)
def test_a_refused_expression_says_why_in_one_sentence(text, problem):
    with pytest.raises(ConfigError) as info:
        compile_expression(text)
    assert str(info.value) == f"invalid expression {text!r}: {problem} {ALLOWED}"


NESTINGS = {
    "unary minus": lambda n: "-" * n + "x",
    "calls": lambda n: "sin(" * n + "x" + ")" * n,
    "left operands": lambda n: "(" * n + "x" + "+1)" * n,
    "right operands": lambda n: "x" + "+(x" * n + ")" * n,
}


@pytest.mark.parametrize("form", sorted(NESTINGS))
def test_expressions_nest_a_hundred_levels_and_no_deeper(form):
    compile_expression(NESTINGS[form](MAX_DEPTH))
    with pytest.raises(ConfigError, match=f"it nests deeper than {MAX_DEPTH} levels"):
        compile_expression(NESTINGS[form](MAX_DEPTH + 1))


def test_an_expression_of_exactly_the_length_limit_is_read_and_one_longer_is_not():
    longest = "x*1." + "0" * (MAX_LENGTH - 4)  # one flat product, however long
    assert len(longest) == MAX_LENGTH
    compile_expression(longest)
    text = longest + "0"
    with pytest.raises(ConfigError) as info:
        compile_expression(text)
    assert str(info.value) == (
        f"expression {text[:40]!r}... is {MAX_LENGTH + 1} characters long; the limit is {MAX_LENGTH}"
    )


def test_a_syntax_error_without_a_position_is_reported_without_a_column(monkeypatch):
    def parse(source, mode):
        raise SyntaxError("unexpected end of input")  # offset None, as for some errors at the end

    monkeypatch.setattr(expr.ast, "parse", parse)
    with pytest.raises(ConfigError) as info:
        compile_expression("x if")
    assert str(info.value) == f"invalid expression 'x if': unexpected end of input. {ALLOWED}"


def test_text_the_parser_refuses_outright_is_a_refused_expression_not_a_crash():
    with pytest.raises(ConfigError) as info:
        compile_expression("x\0")  # null bytes: a ValueError or a SyntaxError, by Python version
    message = str(info.value)
    assert message.startswith("invalid expression 'x\\x00': ") and "null bytes" in message
    assert message.endswith(f". {ALLOWED}")
