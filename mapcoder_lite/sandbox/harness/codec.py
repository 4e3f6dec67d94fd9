"""The plain-data wire format between the program under test, the checker and the host.

A value crosses a process boundary only as JSON built from plain data: None, bool, int, float, str,
bytes, complex, list, tuple, dict, set, frozenset. Decoding builds fresh objects of exactly those
types, so nothing that comes back can carry its own ``__eq__``, ``__hash__`` or ``__repr__``: a
value is only what it says it is. Anything else the program returns becomes an inert handle (its
type name and a clipped repr) that equals nothing but itself.

This file is shipped inside the sandboxed harness programs (standard library only, no imports from
this package) and imported by the host, which decodes with the same rules.
"""

import contextlib as _contextlib
import json as _json
import math as _math
import os as _os
import sys as _sys

MAX_DEPTH = 200
_MAX_INT_BITS = 13_000  # about 3,900 decimal digits: below Python's int/str conversion limit (4,300)
_MAX_HEX_DIGITS = 1_000_000
_REPR_CHARS = 2000


class NotData(ValueError):
    """A wire value that is not in the format: the whole answer is refused."""


class Handle:
    """An object of the program under test that is not plain data: known by number, type and repr only."""

    __slots__ = ("number", "text", "type_name")

    def __init__(self, number, type_name, text):
        self.number, self.type_name, self.text = number, type_name, text

    def __repr__(self):
        return self.text

    def __eq__(self, other):
        return isinstance(other, Handle) and other.number == self.number

    def __hash__(self):
        return hash(("handle", self.number))


def clip_repr(value, limit=_REPR_CHARS):
    try:
        text = repr(value)
    except BaseException as exc:  # a program's __repr__ may raise anything
        return f"<repr failed: {type(exc).__name__}>"
    if not isinstance(text, str):
        return f"<repr returned {type(text).__name__}>"
    if len(text) > limit:
        half = limit // 2
        text = text[:half] + f"...[{len(text) - limit} chars cut]..." + text[-half:]
    return text


def encode(value, handle_of, depth=0):
    """`value` as wire JSON. Subclasses of the plain types travel as their base value (a namedtuple as a
    tuple, a Counter as a dict); any other object goes through handle_of(value) -> wire handle."""
    if depth > MAX_DEPTH:
        raise NotData(f"nested deeper than {MAX_DEPTH} levels")
    if value is None or value is True or value is False:
        return value
    if isinstance(value, int):
        value = int.__index__(value)
        # JSON carries an int as decimal digits, which Python refuses past 4300 of them: hex is unlimited.
        return {"$int": format(value, "x")} if value.bit_length() > _MAX_INT_BITS else value
    if isinstance(value, float):
        value = float.__float__(value)
        return value if _math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, complex):
        return {"$complex": [encode(value.real, handle_of, depth + 1), encode(value.imag, handle_of, depth + 1)]}
    if isinstance(value, bytes | bytearray):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, handle_of, depth + 1) for v in tuple.__iter__(value)]}
    if isinstance(value, list):
        return [encode(v, handle_of, depth + 1) for v in list.__iter__(value)]
    if isinstance(value, dict):
        return {"$dict": [[encode(k, handle_of, depth + 1), encode(v, handle_of, depth + 1)]
                          for k, v in dict.items(value)]}
    if isinstance(value, frozenset):
        return {"$frozenset": [encode(v, handle_of, depth + 1) for v in frozenset.__iter__(value)]}
    if isinstance(value, set):
        return {"$set": [encode(v, handle_of, depth + 1) for v in set.__iter__(value)]}
    return handle_of(value)


def handle_wire(number, value):
    return {"$handle": number, "type": type(value).__name__, "repr": clip_repr(value)}


_TAGS = ("$int", "$float", "$complex", "$bytes", "$tuple", "$dict", "$frozenset", "$set", "$handle")


# One flat dispatch over the wire format's tags on purpose: this is the trust boundary, and every shape
# it accepts is in view at once.
def decode(wire, make_handle=None, depth=0, resolve_ref=None):
    """Plain data from wire JSON, refusing anything outside the format (NotData). Handles become
    make_handle(number, type name, repr), by default an inert Handle. A {"$ref": ...} (the checker naming
    one of the program's own objects in a call) is accepted only where resolve_ref is given: inside the
    program's process, which looks it up."""
    if depth > MAX_DEPTH:
        raise NotData(f"nested deeper than {MAX_DEPTH} levels")
    kind = type(wire)
    if wire is None or kind is bool or kind is str:
        return wire
    if kind is int:
        return wire
    if kind is float:
        if not _math.isfinite(wire):
            raise NotData("a non-finite float outside its tag")
        return wire
    if kind is list:
        return [decode(v, make_handle, depth + 1, resolve_ref) for v in wire]
    if kind is dict and resolve_ref is not None and len(wire) == 1 and "$ref" in wire:
        return resolve_ref(wire["$ref"])
    if kind is not dict or len(wire) not in (1, 3) or not any(tag in wire for tag in _TAGS):
        raise NotData(f"not a wire value: {clip_repr(wire, 200)}")
    if "$handle" in wire:
        number, type_name, text = wire.get("$handle"), wire.get("type"), wire.get("repr")
        if type(number) is not int or type(type_name) is not str or type(text) is not str or len(wire) != 3:
            raise NotData("a malformed handle")
        return (make_handle or Handle)(number, type_name, text[: _REPR_CHARS * 2])
    if len(wire) != 1:
        raise NotData("a tagged value with extra keys")
    (tag, body), = wire.items()
    if tag == "$int":
        if type(body) is not str or len(body) > _MAX_HEX_DIGITS:
            raise NotData("a malformed big int")
        return int(body, 16)
    if tag == "$float":
        if body not in ("inf", "-inf", "nan"):
            raise NotData("a malformed float")
        return float(body)
    if tag == "$bytes":
        if type(body) is not str:
            raise NotData("malformed bytes")
        return bytes.fromhex(body)
    if type(body) is not list:
        raise NotData(f"a malformed {tag}")
    items = [decode(v, make_handle, depth + 1, resolve_ref) for v in body] if tag != "$dict" else None
    if tag == "$complex":
        if len(items) != 2 or not all(type(v) in (int, float) for v in items):
            raise NotData("a malformed complex")
        return complex(items[0], items[1])
    if tag == "$tuple":
        return tuple(items)
    try:
        if tag == "$set":
            return set(items)
        if tag == "$frozenset":
            return frozenset(items)
        if not all(type(pair) is list and len(pair) == 2 for pair in body):
            raise NotData("a malformed dict")
        return {decode(k, make_handle, depth + 1, resolve_ref): decode(v, make_handle, depth + 1, resolve_ref)
                for k, v in body}
    except TypeError as exc:  # an unhashable key or member
        raise NotData(f"a set or dict with an unhashable member: {exc}") from None


def emit(nonce, kind, payload=None):
    """One protocol line on stdout, written past the program's own buffers (which it may have
    replaced); the host reads only lines that start with the run's nonce."""
    for stream in (_sys.stdout, _sys.stderr):
        with _contextlib.suppress(BaseException):  # a program may leave its streams broken
            stream.flush()
    _os.write(1, ("\n" + nonce + ":" + kind + ":" + dumps(payload) + "\n").encode("utf-8", "replace"))


def dumps(wire):
    return _json.dumps(wire, allow_nan=False, separators=(",", ":"))


def loads(text):
    """Wire JSON from text; NaN and Infinity literals are refused (they travel tagged)."""
    def constant(name):
        raise NotData(f"a bare {name}")
    try:
        return _json.loads(text, parse_constant=constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, an int too long, NotData, deep nesting
        raise NotData(f"{type(exc).__name__}: {str(exc)[:200]}") from None
