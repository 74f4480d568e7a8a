"""``bccless cache``: inspect and manage the compiled-object cache.

``ls``/``show`` list entries and their metadata, ``prune``/``clear`` remove
them, ``prepare`` readies this kernel's compile prelude ahead of the first build, ``export``/``import`` move them between machines as a verified bundle
(so hosts without a compiler can run BCC tools from prebuilt objects).
"""
from __future__ import annotations

import argparse
import json
import time
from typing import List, Optional


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser("cache", help="list, prune, export or import compiled objects")
    parser.add_argument("--dir", metavar="PATH",
                        help="cache directory (default: $BCCLESS_CACHE, /var/cache/bccless as "
                             "root, ~/.cache/bccless otherwise)")
    sub = parser.add_subparsers(dest="cache_command", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("ls", help="one line per cached object")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=_ls)
    show = sub.add_parser("show", help="metadata of one object (key or unique key prefix)")
    show.add_argument("key")
    show.set_defaults(func=_show)
    prune = sub.add_parser("prune", help="remove corrupt, old or least recently used objects")
    prune.add_argument("--days", type=float, metavar="N",
                       help="remove objects, generated vmlinux.h and precompiled headers unused "
                            "for N days")
    prune.add_argument("--max-size", metavar="SIZE",
                       help="then remove least recently used until at most SIZE (e.g. 200M)")
    prune.set_defaults(func=_prune)
    clear = sub.add_parser("clear", help="remove every cached object")
    clear.set_defaults(func=_clear)
    export = sub.add_parser("export", help="write a bundle (tar; .gz/.tgz compressed)")
    export.add_argument("file")
    export.add_argument("keys", nargs="*", help="only these objects (default: all)")
    export.set_defaults(func=_export)
    imp = sub.add_parser("import", help="verify and add the objects of a bundle")
    imp.add_argument("file")
    imp.set_defaults(func=_import)
    prepare = sub.add_parser(
        "prepare", help="generate this kernel's vmlinux.h and precompiled headers now, so the "
                        "first compile of any BCC program is fast (needs clang; run at install)")
    prepare.set_defaults(func=_prepare)


def _cache(args: argparse.Namespace):
    from ..cache import ObjectCache
    return ObjectCache(args.dir)


def parse_size(text: str) -> int:
    """'200M' -> bytes (K, M, G suffixes, powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _prepare(args: argparse.Namespace) -> int:
    from ..compile import prepare
    for what, path in prepare(_cache(args)).items():
        print(f"{what:<10} {path or 'not available (see the log)'}")
    return 0


def _ls(args: argparse.Namespace) -> int:
    rows = _cache(args).ls()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["used"]))
        progs = ",".join(row["programs"]) or "-"
        print(f"{row['key'][:16]}  {row['size']:>8}  {used}  {row['status']:<4}  "
              f"{row['filename'] or '-'}  {progs}")
    return 0


def _show(args: argparse.Namespace) -> int:
    print(json.dumps(_cache(args).show(args.key), indent=1))
    return 0


def _prune(args: argparse.Namespace) -> int:
    max_bytes: Optional[int] = parse_size(args.max_size) if args.max_size else None
    removed: List[str] = _cache(args).prune(args.days, max_bytes)
    print(f"removed {len(removed)} object(s)")
    return 0


def _clear(args: argparse.Namespace) -> int:
    print(f"removed {_cache(args).clear()} object(s)")
    return 0


def _export(args: argparse.Namespace) -> int:
    count = _cache(args).export(args.file, args.keys or None)
    print(f"exported {count} object(s) to {args.file}")
    return 0


def _import(args: argparse.Namespace) -> int:
    count = _cache(args).import_bundle(args.file)
    print(f"imported {count} object(s) from {args.file}")
    return 0
