"""``bccless btf``: C headers and listings from kernel (or any) BTF.

``dump`` writes a layout-exact vmlinux.h (or a bpftool-style raw listing);
``type`` prints one named type with member offsets, the quick look one needs
while writing CO-RE code.  Both read the running kernel's BTF unless
``--file`` names a raw BTF blob (``.xz`` accepted) or an ELF with ``.BTF``.
"""
from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:   # typing and argparse cost milliseconds to import; annotations are strings
    import argparse
    from typing import Optional

    from ..btf.parse import BTF


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser("btf", help="generate vmlinux.h or show types from BTF")
    sub = parser.add_subparsers(dest="btf_command", metavar="ACTION")
    sub.required = True

    dump = sub.add_parser("dump", help="write all types as a C header (vmlinux.h) or raw listing")
    _add_file(dump)
    dump.add_argument("--format", choices=("c", "raw"), default="c",
                      help="c: layout-exact vmlinux.h (default); raw: one line per type, "
                           "as bpftool btf dump prints it")
    dump.add_argument("-o", "--output", metavar="PATH",
                      help="write here instead of standard output")
    dump.set_defaults(func=_dump, lazy_logging=True)

    show = sub.add_parser("type", help="print the C definition of one named type")
    show.add_argument("name", nargs="+", metavar="NAME",
                      help="type name, optionally with its kind: task_struct, "
                           "'struct sock', enum pid_type, hash___2")
    _add_file(show)
    show.add_argument("--no-offsets", action="store_true",
                      help="omit the /* offset size */ member comments")
    show.set_defaults(func=_type, lazy_logging=True)


class QuickArgs:
    """What ``argparse.Namespace`` holds, without importing argparse (or :mod:`types`)."""

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)


def quick_parse(words: "list[str]") -> "Optional[QuickArgs]":
    """The arguments of a plain ``btf type NAME... [--file PATH] [--no-offsets]``, or None.

    ``btf type`` is the command people run over and over while writing CO-RE
    code, and building argparse's parsers costs about as much as the command's
    own work.  This accepts only the unambiguous spellings above (no
    ``--file=PATH``, abbreviations, ``--`` or help) and returns the values
    argparse would; anything else returns None and goes through argparse.
    tests/btf_c/test_cli_startup.py checks the two agree.
    """
    if words[:2] != ["btf", "type"]:
        return None
    names: "list[str]" = []
    path = None
    no_offsets = False
    rest = iter(words[2:])
    for word in rest:
        if word == "--no-offsets":
            no_offsets = True
        elif word == "--file":
            path = next(rest, None)
            if path is None or path.startswith("-"):
                return None
        elif word.startswith("-"):
            return None
        else:
            names.append(word)
    if not names:
        return None
    return QuickArgs(verbose=0, command="btf", btf_command="type", name=names,
                     file=path, no_offsets=no_offsets, func=_type, lazy_logging=True)


def _add_file(parser: "argparse.ArgumentParser") -> None:
    parser.add_argument("--file", metavar="PATH",
                        help="BTF to read: raw blob (.xz ok) or ELF with a .BTF section "
                             "(default: /sys/kernel/btf/vmlinux)")


def _load(path: Optional[str]) -> "BTF":
    if path is None:
        from ..btf.sources import load_kernel_btf
        return load_kernel_btf()
    from ..btf.parse import BTF
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        from ..errors import BTFError
        raise BTFError(f"cannot read: {exc.strerror}", source=path) from None
    return BTF.from_elf(path) if magic == b"\x7fELF" else BTF.from_file(path)


def _dump(args: "argparse.Namespace") -> int:
    btf = _load(args.file)
    out = open(args.output, "w") if args.output else sys.stdout
    try:
        if args.format == "raw":
            from ..btf.rawdump import write_raw
            write_raw(btf, out.write)
        else:
            from ..btf.cdump import write_c_header
            write_c_header(btf, out.write)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _type(args: "argparse.Namespace") -> int:
    from ..btf.cdump import type_c_text

    btf = _load(args.file)
    sys.stdout.write(type_c_text(btf, " ".join(args.name), offsets=not args.no_offsets))
    return 0
