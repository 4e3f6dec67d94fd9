"""The judging side of a function test: the test's own code, run without the program under test.

Shipped into its own sandbox run after codec.py. The test (an assert, or a benchmark's
``check(candidate)``) runs here unchanged, with each name the program defines bound to a proxy. A
proxy call is a question to the program's process, answered with plain data, so the comparison,
the float tolerance and every other rule of the test are decided here, where none of the program's
code ever runs.

The host alternates: a *discover* run records the questions the test asks (answers are not known
yet: each is a placeholder that absorbs any use and asserts are made soft), the program's process
answers them, and a *judge* run replays the test with those answers. A judge run that asks a
question it has no answer for (the answers changed what the test asks next, or a failed assert's
message asks one) reports it and the host goes round again with it added.
"""

import ast as _ast
import builtins as _builtins
import importlib as _importlib
import linecache as _linecache
import os as _os
import random as _random
import traceback as _traceback

from mapcoder_lite.sandbox.harness.codec import (  # shipped: codec.py is inlined above this file
    NotData,
    clip_repr,
    decode,
    dumps,
    emit,
    encode,
)

_ERROR_CHARS = 20000


class _Unknown:
    """An answer the discover run does not have yet: every use gives another placeholder."""

    def _same(self, *args, **kwargs):
        return self

    __call__ = __getattr__ = __getitem__ = _same
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _same
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = _same
    __abs__ = __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = __round__ = _same
    __lt__ = __le__ = __gt__ = __ge__ = _same

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    def __hash__(self):
        return id(self)

    def __bool__(self):
        return False

    def __len__(self):
        return 0

    def __index__(self):
        return 0

    def __float__(self):
        return 0.0

    def __iter__(self):
        return iter(())

    def __repr__(self):
        return "<answer not known yet>"


class _Soften(_ast.NodeTransformer):
    """Discover runs keep going past a failed assert, so that they see every question the test asks.
    An assert's message is dropped: it runs only when the assert fails, which a judge run will tell."""

    def visit_Assert(self, node):
        node.msg = None
        handler = _ast.ExceptHandler(type=_ast.Name("Exception", _ast.Load()), name=None, body=[_ast.Pass()])
        return _ast.Try(body=[node], handlers=[handler], orelse=[], finalbody=[])


class _Tolerant(_ast.NodeTransformer):
    """`assert x == <float literal>` becomes "equal, or within the tolerance" (HumanEval-ET's rule)."""

    def visit_Assert(self, node):
        test = node.test
        if (isinstance(test, _ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], _ast.Eq)
                and _is_float(test.comparators[0])):
            call = _ast.Call(_ast.Name("__close__", _ast.Load()), [test.left, test.comparators[0]], [])
            node.test = _ast.copy_location(call, test)
        return node


def _is_float(node):
    if isinstance(node, _ast.UnaryOp) and isinstance(node.op, _ast.USub | _ast.UAdd):
        node = node.operand
    return isinstance(node, _ast.Constant) and type(node.value) is float


def _closeness(tolerance):
    def close(value, expected):
        if value == expected:
            return True
        return type(value) in (int, float) and abs(value - expected) <= tolerance
    return close


class _ProgramKilled(BaseException):
    """The program's process died or timed out on a question: no test code may catch that."""


class _ProgramError(Exception):
    """The program raised an exception that is not a builtin one (its class stays in its process)."""


class _Remote:
    """A name or object of the program under test; calling it asks the program's process."""

    __slots__ = ("_ref", "_text")

    def __init__(self, ref, text):
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_text", text)

    def __call__(self, *args, **kwargs):
        return _STATE["ask"](self, args, kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Remote(["attr", self._ref, name], f"{self._text}.{name}")

    def __repr__(self):
        return self._text


_STATE = {}


def _wire_arg(value):
    if isinstance(value, _Remote):
        return {"$ref": value._ref}
    if isinstance(value, _Unknown):
        raise LookupError("not known yet")
    raise NotData(f"a {type(value).__name__} cannot be passed to the program under test")


def _describe(remote, args, kwargs):
    parts = [clip_repr(a, 300) for a in args] + [f"{k}={clip_repr(v, 300)}" for k, v in kwargs.items()]
    return f"{remote._text}({', '.join(parts)})"


def _answer_value(answer):
    if "value" in answer:
        return decode(answer["value"], make_handle=lambda n, t, r: _Remote(["handle", n], r))
    if "raised" in answer:
        raised = answer["raised"]
        cls = getattr(_builtins, raised["type"], None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            try:
                error = cls(raised["message"])
            except Exception:
                error = _ProgramError(f"{raised['type']}: {raised['message']}")
        else:
            error = _ProgramError(f"{raised['type']}: {raised['message']}")
        raise error
    raise _ProgramKilled(answer.get("killed") or "the program gave no answer")


def main(spec):
    nonce, mode = spec["nonce"], spec["mode"]
    _random.seed(0)  # the discover and judge runs must ask the same random questions
    asked = []
    last = {}
    answers = {dumps(q): a for q, a in zip(spec["questions"], spec["answers"], strict=True)}

    def ask(remote, args, kwargs):
        try:
            question = {"fn": remote._ref, "args": encode(list(args), _wire_arg),
                        "kwargs": encode(dict(kwargs), _wire_arg)}
        except LookupError:  # built from an answer the discover run does not know yet
            if mode == "discover":
                return _Unknown()
            raise
        if mode == "discover":
            asked.append(question)
            return _Unknown()
        # The same question gets the same answer: the program answered it once, in the host's order.
        answer = answers.get(dumps(question))
        if answer is None:
            emit(nonce, "QUESTIONS", [question])
            _os._exit(0)
        last["call"] = _describe(remote, args, kwargs)
        last["answer"] = answer
        return _answer_value(answer)

    _STATE["ask"] = ask
    ns = {"__name__": "__test__", "__builtins__": _builtins}
    for name in spec["modules"]:
        ns[name] = _importlib.import_module(name)
    failure = None
    try:
        if spec["prelude"]:
            _linecache.cache["<prelude>"] = (0, None, spec["prelude"].splitlines(True), "<prelude>")
            exec(compile(spec["prelude"], "<prelude>", "exec"), ns)
        for name in spec["remote"]:
            ns[name] = _Remote(["global", name], name)
        if spec["entry_point"]:
            ns["candidate"] = _Remote(["global", spec["entry_point"]], spec["entry_point"])
        tree = _ast.parse(spec["test"], "<test>")
        if spec["float_tolerance"] is not None:
            ns["__close__"] = _closeness(spec["float_tolerance"])
            tree = _ast.fix_missing_locations(_Tolerant().visit(tree))
        if mode == "discover":
            tree = _ast.fix_missing_locations(_Soften().visit(tree))
        _linecache.cache["<test>"] = (0, None, spec["test"].splitlines(True), "<test>")
        exec(compile(tree, "<test>", "exec"), ns)
        if spec["call_check"]:
            ns["check"](ns["candidate"])
    except BaseException as exc:
        failure = exc
    if mode == "discover":
        emit(nonce, "QUESTIONS", asked)
        _os._exit(0)
    if failure is None:
        emit(nonce, "PASS")
        _os._exit(0)
    emit(nonce, "FAIL", {"error": _failure_text(failure, last)})
    _os._exit(0)


def _failure_text(exc, last):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    text = "".join(_traceback.format_exception(type(exc), exc, tb)).rstrip()
    if isinstance(exc, _ProgramKilled):
        text = f"the program stopped while answering {last.get('call', 'a call')}: {exc}"
    elif last:
        answer = last["answer"]
        if "value" in answer:
            shown = clip_repr(decode(answer["value"]), 1000)
            text += f"\nthe program's last answer: {last['call']} returned {shown}"
        elif "raised" in answer:
            text += f"\nthe program's last answer: {last['call']} raised:\n{answer['raised']['traceback']}"
    return text[-_ERROR_CHARS:]
