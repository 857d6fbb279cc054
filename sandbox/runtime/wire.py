"""Plain data across the trust boundary: a tagged JSON codec and line framing.

Runs inside the sandbox (standard library only, no imports of grpo_env). The untrusted
executor encodes what candidate code returns; the trusted harness decodes it into builtin
objects only, so every comparison a test makes runs on ``int.__eq__``, ``list.__eq__``...
never on a method the candidate wrote.

JSON carries None, bool, str, small ints, finite floats and lists as themselves; every other
value is an object with a ``"$"`` tag. Objects that are not plain data travel as references
(``{"$": "ref"}``) that stay on the executor's side.
"""

import _json  # the C codec alone: importing json costs `re`, ~10 ms per executor start
import binascii
import math
import os

MAX_LINE_BYTES = 16 * 1024 * 1024
_SMALL_INT = 2**63  # beyond this ints travel as hex: decimal parsing is quadratic and capped


class ProtocolError(Exception):
    """A message that is not what the protocol allows (malformed, oversized, wrong tag)."""


class NotData(Exception):
    """A value with no plain-data form; the executor sends a reference instead."""


def encode(value, make_ref=None, _depth=0):
    """``value`` as a JSON-able structure; ``make_ref(obj)`` names an object that is not
    plain data (without it such objects raise ``NotData``)."""
    if _depth > 200:
        raise NotData("nested too deeply")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -_SMALL_INT < value < _SMALL_INT else {"$": "int", "v": hex(value)}
    if kind is float:
        return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
    if kind is list:
        return [encode(item, make_ref, _depth + 1) for item in value]
    if kind is tuple:
        return {"$": "tuple", "v": [encode(item, make_ref, _depth + 1) for item in value]}
    if kind is dict:
        pairs = [
            [encode(k, make_ref, _depth + 1), encode(v, make_ref, _depth + 1)]
            for k, v in value.items()
        ]
        return {"$": "dict", "v": pairs}
    if kind is set or kind is frozenset:
        items = [encode(item, make_ref, _depth + 1) for item in value]
        return {"$": kind.__name__, "v": items}
    if kind is bytes or kind is bytearray:
        return {"$": kind.__name__, "v": binascii.b2a_base64(value, newline=False).decode()}
    if kind is complex:
        return {"$": "complex", "v": [encode(value.real), encode(value.imag)]}
    if kind is range:
        return {"$": "range", "v": [value.start, value.stop, value.step]}
    try:
        plain = _as_builtin(value)
    except Exception:  # a subclass whose state even the builtin methods cannot read
        plain = None
    if plain is not None:
        return encode(plain[0], make_ref, _depth + 1)
    if make_ref is None:
        raise NotData(f"{kind.__name__} object is not plain data")
    return {"$": "ref", "v": make_ref(value), "type": _type_name(value)}


def _as_builtin(value):
    """Subclasses of builtins (namedtuple, OrderedDict, Counter, an ``int`` subclass...) as
    the builtin value they hold, read through the builtin's own methods so that overridden
    ``__iter__``/``__eq__`` play no part. Returns a 1-tuple, or None when not a subclass."""
    for base, convert in _BUILTIN_VIEWS:
        if isinstance(value, base):
            return (convert(value),)
    return None


_BUILTIN_VIEWS = (
    (int, int.__int__),
    (float, float.__float__),
    (str, str.__str__),
    (list, lambda v: list(list.__iter__(v))),
    (tuple, lambda v: tuple(tuple.__iter__(v))),
    (dict, lambda v: dict(dict.items(v))),
    (frozenset, lambda v: frozenset(frozenset.__iter__(v))),
    (set, lambda v: set(set.__iter__(v))),
    (bytes, lambda v: bytes(memoryview(v))),
    (bytearray, lambda v: bytearray(memoryview(v))),
    (complex, complex.__complex__),
)


def _type_name(value):
    try:
        return str(type(value).__qualname__)[:100]
    except Exception:
        return "object"


def decode(data, resolve_ref=None, _depth=0):
    """The builtin value ``data`` (from ``json.loads``) stands for. ``resolve_ref(id, type)``
    turns a reference into an object; without it references are a protocol error."""
    if _depth > 400:
        raise ProtocolError("value nested too deeply")
    kind = type(data)
    if data is None or kind is bool or kind is str or kind is int:
        return data
    if kind is float:
        return data
    if kind is list:
        return [decode(item, resolve_ref, _depth + 1) for item in data]
    if kind is not dict or set(data) - {"$", "v", "type"} or "$" not in data:
        raise ProtocolError(f"unexpected {kind.__name__} in a value")
    tag, raw = data["$"], data.get("v")
    try:
        return _decode_tagged(tag, raw, data, resolve_ref, _depth)
    except ProtocolError:
        raise
    except (TypeError, ValueError, OverflowError, RecursionError, binascii.Error) as err:
        raise ProtocolError(f"bad {tag!r} value: {type(err).__name__}") from None


def _decode_tagged(tag, raw, data, resolve_ref, depth):
    def items():
        if type(raw) is not list:
            raise ProtocolError(f"{tag!r} needs a list")
        return [decode(item, resolve_ref, depth + 1) for item in raw]

    if tag == "tuple":
        return tuple(items())
    if tag == "set":
        return set(items())
    if tag == "frozenset":
        return frozenset(items())
    if tag == "dict":
        pairs = items()
        if any(type(p) is not list or len(p) != 2 for p in pairs):
            raise ProtocolError("dict items must be pairs")
        return {k: v for k, v in pairs}
    if tag == "int":
        if type(raw) is not str or len(raw) > MAX_LINE_BYTES:
            raise ProtocolError("bad int")
        return int(raw, 16)
    if tag == "float":
        if raw not in ("nan", "inf", "-inf"):
            raise ProtocolError("bad float")
        return float(raw)
    if tag == "complex":
        parts = items()
        if len(parts) != 2 or any(type(p) not in (int, float) for p in parts):
            raise ProtocolError("bad complex")
        return complex(parts[0], parts[1])
    if tag in ("bytes", "bytearray"):
        if type(raw) is not str:
            raise ProtocolError("bad bytes")
        blob = binascii.a2b_base64(raw.encode("ascii"), strict_mode=True)
        return blob if tag == "bytes" else bytearray(blob)
    if tag == "range":
        if type(raw) is not list or len(raw) != 3 or any(type(x) is not int for x in raw):
            raise ProtocolError("bad range")
        return range(*raw)
    if tag == "ref":
        if resolve_ref is None or type(raw) is not int:
            raise ProtocolError("unexpected reference")
        return resolve_ref(raw, str(data.get("type", "object"))[:100])
    raise ProtocolError(f"unknown tag {str(tag)[:40]!r}")


def _no_default(obj):
    raise TypeError(f"{type(obj).__name__} is not JSON")


# ASCII-only output: lone surrogates in candidate strings still make valid UTF-8 lines.
_ENCODE = _json.make_encoder(
    None, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, False
)


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name):
        raise ValueError(f"{name} is not allowed")


_SCAN = _json.make_scanner(_ScanContext())


def dumps(message):
    """One protocol message as a line of bytes (JSON never contains a raw newline)."""
    return "".join(_ENCODE(message, 0)).encode("ascii") + b"\n"


def loads(line):
    """Parse one line from a party we do not trust; anything but a JSON object is a
    protocol error."""
    import json  # already loaded wherever untrusted lines are read (harness, server, host)

    try:
        message = json.loads(line)
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"malformed message ({type(err).__name__})") from None
    if type(message) is not dict:
        raise ProtocolError("a message must be a JSON object")
    return message


def loads_trusted(line):
    """Parse a line the trusted side wrote (the executor's requests): the C scanner only."""
    message, _ = _SCAN(line.decode("utf-8"), 0)
    return message


class LineReader:
    """Reads newline-framed messages from a file descriptor without trusting the writer:
    lines longer than ``max_bytes`` are a protocol error rather than unbounded memory."""

    def __init__(self, fd, max_bytes=MAX_LINE_BYTES):
        self.fd = fd
        self.max_bytes = max_bytes
        self.buffer = bytearray()
        self.eof = False

    def pop_line(self):
        """A complete line if one is buffered, else None."""
        end = self.buffer.find(b"\n")
        if end < 0:
            if len(self.buffer) > self.max_bytes:
                raise ProtocolError(f"message longer than {self.max_bytes} bytes")
            return None
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 1]
        return line

    def feed(self):
        """Read what is available (call when the fd is readable). False at end of file."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True
