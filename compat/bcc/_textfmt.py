"""Text forms of keys and leaves: ``key_sprintf``/``leaf_sprintf`` and the scanf pair.

BCC generates these printers from the LLVM type of the map's key and leaf, so
the text follows LLVM's view of the C type, not ctypes':

* integers of any width print as ``0x%x`` of their unsigned bit pattern
  (``-1`` in an ``int`` is ``0xffffffff``; ``char`` is an integer, ``0x7a``);
* ``char``/``u8`` arrays are C strings in double quotes, cut at the first NUL;
* other arrays are ``[ e1 e2 ]`` and structs ``{ f1 f2 }``, each element
  followed by one space;
* padding does not exist in the LLVM type, so BCC's ``__pad_N`` fields are not
  printed; floats print as nothing (BCC's printer has no case for them).

Unions have no LLVM counterpart BCC prints faithfully; bccless prints their
largest member.
"""
from __future__ import annotations

import ctypes as ct
from typing import Any, Iterator, List, Tuple

_BYTE_TYPES = (ct.c_char, ct.c_byte, ct.c_ubyte)


def _members(cls) -> List[Tuple[str, Any]]:
    fields = [(f[0], f[1]) for f in cls._fields_ if not f[0].startswith("__pad_")]
    if issubclass(cls, ct.Union) and fields:
        return [max(fields, key=lambda f: ct.sizeof(f[1]))]
    return fields


def _is_record(cls) -> bool:
    return isinstance(cls, type) and issubclass(cls, (ct.Structure, ct.Union))


def _is_array(cls) -> bool:
    return isinstance(cls, type) and issubclass(cls, ct.Array)


def _write(cls, val, out: List[bytes]) -> None:
    if _is_record(cls):
        out.append(b"{ ")
        for name, ftype in _members(cls):
            _write(ftype, getattr(val, name), out)
            out.append(b" ")
        out.append(b"}")
    elif _is_array(cls):
        if cls._type_ in _BYTE_TYPES:
            data = val if isinstance(val, bytes) else bytes(val)
            out.append(b'"' + data.split(b"\0", 1)[0] + b'"')
        else:
            out.append(b"[ ")
            for item in val:
                _write(cls._type_, item, out)
                out.append(b" ")
            out.append(b"]")
    elif cls in (ct.c_float, ct.c_double, ct.c_longdouble):
        return
    else:
        v = getattr(val, "value", val)
        if isinstance(v, bytes):
            v = v[0] if v else 0
        out.append(b"0x%x" % (int(v) & ((1 << (8 * ct.sizeof(cls))) - 1)))


def sprintf(obj) -> bytes:
    """BCC's text form of a ctypes key or leaf."""
    out: List[bytes] = []
    _write(type(obj), obj, out)
    return b"".join(out)


def _tokens(text: bytes) -> Iterator[bytes]:
    i, n = 0, len(text)
    while i < n:
        c = text[i:i + 1]
        if c.isspace():
            i += 1
        elif c in (b"{", b"}", b"[", b"]"):
            yield c
            i += 1
        elif c == b'"':
            end = text.find(b'"', i + 1)
            if end < 0:
                raise ValueError("unterminated string")
            yield text[i:end + 1]
            i = end + 1
        else:
            j = i
            while j < n and not text[j:j + 1].isspace() and text[j:j + 1] not in b"{}[]\"":
                j += 1
            yield text[i:j]
            i = j


def _expect(it: Iterator[bytes], want: bytes) -> None:
    if next(it) != want:
        raise ValueError("expected %r" % want)


def _read(cls, it: Iterator[bytes]) -> Any:
    if _is_record(cls):
        obj = cls()
        _expect(it, b"{")
        for name, ftype in _members(cls):
            value = _read(ftype, it)
            if value is not None:
                setattr(obj, name, value)
        _expect(it, b"}")
        return obj
    if _is_array(cls):
        if cls._type_ in _BYTE_TYPES:
            tok = next(it)
            if len(tok) < 2 or tok[:1] != b'"':
                raise ValueError("expected a string")
            arr = cls.from_buffer_copy(tok[1:-1][:cls._length_].ljust(ct.sizeof(cls), b"\0"))
            # a char[] member is set from bytes, other byte arrays from an array
            return arr.raw if cls._type_ is ct.c_char else arr
        _expect(it, b"[")
        arr = cls()
        for i in range(cls._length_):
            arr[i] = _read(cls._type_, it)
        _expect(it, b"]")
        return arr
    if cls in (ct.c_float, ct.c_double, ct.c_longdouble):
        return None
    bits = 8 * ct.sizeof(cls)
    v = int(next(it), 0) & ((1 << bits) - 1)
    if cls is ct.c_char:
        return bytes([v])
    if cls is ct.c_bool:
        return bool(v)
    if cls(-1).value < 0 and v >> (bits - 1):
        v -= 1 << bits
    return v


def scanf(cls, text) -> Any:
    """Parse BCC's text form back into a ``cls`` instance."""
    if isinstance(text, str):
        text = text.encode()
    try:
        it = _tokens(text)
        obj = _read(cls, it)
        if next(it, None) is not None:
            raise ValueError("trailing text")
    except (StopIteration, ValueError):
        raise Exception("Could not scanf %s" % text.decode(errors="replace")) from None
    if isinstance(obj, cls):
        return obj
    if isinstance(obj, bytes) and _is_array(cls):
        return cls.from_buffer_copy(obj)
    return cls(obj)
