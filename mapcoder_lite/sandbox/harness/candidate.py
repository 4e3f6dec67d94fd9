"""The program-under-test side of a function test: it only answers questions, as plain data.

Shipped into the sandbox after codec.py. It loads the program as module ``solution`` (so an
``if __name__ == "__main__":`` block does not run), after the problem's prefix if it has one (a
benchmark's prompt, which scoring runs before the code), runs the test's setup in its namespace, then
either evaluates expressions (a test's ``assert <expr> == <literal>`` left sides) or makes calls that
the checker asked for, and writes each result as a wire value. It never sees an expected value and
never says whether a test passed: whatever the program does to this process (patching builtins,
this file's functions, exiting early) can only change the values it reports, which the host and the
checker then judge.
"""

import __future__ as _future

import linecache as _linecache
import os as _os
import sys as _sys
import traceback as _traceback
import types as _types
import warnings as _warnings

from mapcoder_lite.sandbox.harness.codec import (  # shipped: codec.py is inlined above this file
    NotData,
    clip_repr,
    decode,
    emit,
    encode,
    handle_wire,
)

_ERROR_CHARS = 20000
_FUTURE_FLAGS = 0
for _name in _future.all_feature_names:
    _FUTURE_FLAGS |= getattr(_future, _name).compiler_flag


def _compile(name, text, mode="exec", flags=0):
    # Registered so tracebacks show the lines (mtime None: linecache never drops the entry).
    _linecache.cache[name] = (len(text), None, text.splitlines(True), name)
    return compile(text, name, mode, flags, dont_inherit=True)


def _units(prefix, code):
    """The compiled program: the prefix as <prefix>, then the code as solution.py, both run in one
    namespace, so that tracebacks number the code's lines as the code itself does (the reader is shown
    the code, not the prefix). The parts stand for prefix + code only when each compiles on its own and
    so does the whole; else (the code continues a statement of the prefix, e.g. a function body after
    its stub) the whole is one unit, as scoring runs it."""
    if not prefix:
        return [_compile("solution.py", code)]
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")  # a check only: the compile that is run warns
            compile(prefix + code, "solution.py", "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise _located(exc, prefix.count("\n")) from None
    if prefix.endswith("\n"):
        try:
            head = _compile("<prefix>", prefix)
            # A __future__ import of the prefix governs the code after it, as it does in the whole.
            return [head, _compile("solution.py", code, flags=head.co_flags & _FUTURE_FLAGS)]
        except SyntaxError:
            pass
    return [_compile("solution.py", prefix + code)]


def _located(exc, prefix_lines):
    """The whole program's syntax error, placed in the code (its own line numbers) or in <prefix>."""
    if exc.lineno is None:
        return exc
    if exc.lineno <= prefix_lines:
        exc.filename = "<prefix>"
    else:
        exc.lineno -= prefix_lines
        if exc.end_lineno is not None:
            exc.end_lineno -= prefix_lines
    return exc


def _trace(exc):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # the harness's own frames mean nothing to the reader
    text = "".join(_traceback.format_exception(type(exc), exc, tb)).rstrip()
    return text[-_ERROR_CHARS:]


def _raised(exc):
    try:
        message = str(exc)
    except BaseException:
        message = ""
    return {"type": type(exc).__name__, "message": message[:_ERROR_CHARS], "traceback": _trace(exc)}


# One sequence on purpose: this is the whole life of the untrusted program's process (load, answer,
# report), read top to bottom by whoever checks what the program can reach.
def main(spec):
    nonce = spec["nonce"]
    module = _types.ModuleType("solution")
    module.__file__ = "solution.py"
    _sys.modules["solution"] = module
    ns = module.__dict__
    try:
        for unit in _units(spec["prefix"], spec["code"]):
            exec(unit, ns)
        if spec["setup"]:
            exec(_compile("<setup>", spec["setup"]), ns)
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            error = f"the program called sys.exit({clip_repr(exc.code, 200)}) while loading"
        else:
            error = _trace(exc)
        emit(nonce, "ERROR", error)
        _os._exit(1)
    entry = spec["entry_point"]
    if entry:
        if entry not in ns:
            emit(nonce, "ERROR", f"NameError: the program does not define the entry point {entry!r}")
            _os._exit(1)
        ns.setdefault("candidate", ns[entry])
    emit(nonce, "LOADED")

    handles = []

    def handle_of(value):
        handles.append(value)
        return handle_wire(len(handles) - 1, value)

    def resolve(ref):
        # What the checker may name: a global of the program, one of its earlier answers, an attribute.
        kind = ref[0]
        if kind == "global":
            if ref[1] not in ns:
                raise NameError(f"name {ref[1]!r} is not defined by the program")
            return ns[ref[1]]
        if kind == "handle":
            return handles[ref[1]]
        if kind == "attr":
            return getattr(resolve(ref[1]), ref[2])
        raise NotData(f"unknown reference {kind!r}")

    _linecache.cache["<test>"] = (0, None, [], "<test>")
    for index, question in enumerate(spec["questions"]):
        try:
            if "expr" in question:
                value = eval(_compile("<test>", question["expr"], "eval"), ns)
            else:
                function = resolve(question["fn"])
                args = decode(question["args"], resolve_ref=resolve)
                kwargs = decode(question["kwargs"], resolve_ref=resolve)
                value = function(*args, **kwargs)
            answer = {"value": encode(value, handle_of)}
        except BaseException as exc:
            if isinstance(exc, SystemExit):
                exc = RuntimeError(f"the program called sys.exit({clip_repr(exc.code, 200)})")
            answer = {"raised": _raised(exc)}
        emit(nonce, "ANSWER", [index, answer])
    emit(nonce, "DONE")
    _os._exit(0)  # skip atexit hooks and non-daemon threads the program may have left
