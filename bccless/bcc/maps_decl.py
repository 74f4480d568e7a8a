"""BCC map-declaring macros (``BPF_HASH``, ``BPF_TABLE``, ...) -> libbpf ``.maps``.

One table (:data:`MACROS`) describes every supported macro: its parameters,
BCC's defaults and the table kind.  The same table generates the parse-time
stub macros (so ``counts.lookup(&k)`` type-checks under libclang with the right
key/leaf types) and resolves each invocation into a :class:`MapDecl`, which
renders the BTF-defined libbpf map.  Key and leaf go through ``__type()``
wherever the kernel accepts BTF for the map type, so the object's BTF carries
them and the Python side can build BCC's key/leaf ctypes from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

from ..errors import CompileError

# BCC table kind -> (BPF_MAP_TYPE_* suffix, how key/value are declared, default map flags)
# 'btf': __type(key)/__type(value); 'sizes': key_size/value_size; 'value': value_size only (no key)
KINDS: Dict[str, Tuple[str, str, str]] = {
    "hash": ("HASH", "btf", ""),
    "array": ("ARRAY", "btf", ""),
    "percpu_hash": ("PERCPU_HASH", "btf", ""),
    "percpu_array": ("PERCPU_ARRAY", "btf", ""),
    "lru_hash": ("LRU_HASH", "btf", ""),
    "lru_percpu_hash": ("LRU_PERCPU_HASH", "btf", ""),
    "lpm_trie": ("LPM_TRIE", "btf", "BPF_F_NO_PREALLOC"),
    "histogram": ("ARRAY", "btf", ""),   # HASH unless the key type is exactly `int`
    "prog": ("PROG_ARRAY", "sizes", ""),
    "perf_output": ("PERF_EVENT_ARRAY", "sizes", ""),
    "perf_array": ("PERF_EVENT_ARRAY", "sizes", ""),
    "cgroup_array": ("CGROUP_ARRAY", "sizes", ""),
    "ringbuf": ("RINGBUF", "none", ""),
    "stacktrace": ("STACK_TRACE", "sizes", ""),
    "queue": ("QUEUE", "value", ""),
    "stack": ("STACK", "value", ""),
    "devmap": ("DEVMAP", "sizes", ""),
    "cpumap": ("CPUMAP", "sizes", ""),
    "xskmap": ("XSKMAP", "sizes", ""),
    "sockmap": ("SOCKMAP", "sizes", ""),
    "sockhash": ("SOCKHASH", "sizes", ""),
    "sk_storage": ("SK_STORAGE", "btf", "BPF_F_NO_PREALLOC"),
    "inode_storage": ("INODE_STORAGE", "btf", "BPF_F_NO_PREALLOC"),
    "task_storage": ("TASK_STORAGE", "btf", "BPF_F_NO_PREALLOC"),
}


@dataclass(frozen=True)
class MacroSpec:
    """A map macro: parameter names, BCC defaults and fixed key/leaf/kind."""

    params: Tuple[str, ...]
    defaults: Tuple[Tuple[str, str], ...] = ()
    kind: str = ""                     # '' -> taken from the "type" parameter
    fixed: Tuple[Tuple[str, str], ...] = ()

    @property
    def required(self) -> int:
        return len(self.params) - len(self.defaults)


_HASHLIKE = MacroSpec(("name", "key", "leaf", "size"),
                      (("key", "u64"), ("leaf", "u64"), ("size", "10240")))
_ARRAYLIKE = MacroSpec(("name", "leaf", "size"), (("leaf", "u64"), ("size", "10240")),
                       fixed=(("key", "int"),))


def _with_kind(spec: MacroSpec, kind: str) -> MacroSpec:
    return MacroSpec(spec.params, spec.defaults, kind, spec.fixed)


MACROS: Dict[str, MacroSpec] = {
    "BPF_TABLE": MacroSpec(("type", "key", "leaf", "name", "size")),
    "BPF_F_TABLE": MacroSpec(("type", "key", "leaf", "name", "size", "flags")),
    "BPF_TABLE_PINNED": MacroSpec(("type", "key", "leaf", "name", "size", "pin", "flags"),
                                  (("flags", "0"),)),
    "BPF_HASH": _with_kind(_HASHLIKE, "hash"),
    "BPF_PERCPU_HASH": _with_kind(_HASHLIKE, "percpu_hash"),
    "BPF_LRU_HASH": _with_kind(_HASHLIKE, "lru_hash"),
    "BPF_LPM_TRIE": _with_kind(_HASHLIKE, "lpm_trie"),
    "BPF_ARRAY": _with_kind(_ARRAYLIKE, "array"),
    "BPF_PERCPU_ARRAY": _with_kind(_ARRAYLIKE, "percpu_array"),
    "BPF_HISTOGRAM": MacroSpec(("name", "key", "size"), (("key", "int"), ("size", "64")),
                               "histogram", (("leaf", "u64"),)),
    "BPF_PERF_OUTPUT": MacroSpec(("name",), (), "perf_output",
                                 (("key", "int"), ("leaf", "u32"), ("size", "0"))),
    "BPF_RINGBUF_OUTPUT": MacroSpec(("name", "pages"), (), "ringbuf",
                                    (("key", "int"), ("leaf", "u32"))),
    "BPF_PERF_ARRAY": MacroSpec(("name", "size"), (), "perf_array",
                                (("key", "int"), ("leaf", "u32"))),
    "BPF_CGROUP_ARRAY": MacroSpec(("name", "size"), (), "cgroup_array",
                                  (("key", "int"), ("leaf", "u32"))),
    "BPF_STACK_TRACE": MacroSpec(("name", "size"), (), "stacktrace",
                                 (("key", "int"), ("leaf", "struct bpf_stacktrace"))),
    "BPF_PROG_ARRAY": MacroSpec(("name", "size"), (), "prog", (("key", "u32"), ("leaf", "u32"))),
    "BPF_QUEUE": MacroSpec(("name", "leaf", "size", "flags"), (("flags", "0"),), "queue",
                           (("key", "int"),)),
    "BPF_STACK": MacroSpec(("name", "leaf", "size", "flags"), (("flags", "0"),), "stack",
                           (("key", "int"),)),
    "BPF_DEVMAP": MacroSpec(("name", "size"), (), "devmap", (("key", "u32"), ("leaf", "int"))),
    "BPF_CPUMAP": MacroSpec(("name", "size"), (), "cpumap", (("key", "u32"), ("leaf", "u32"))),
    "BPF_XSKMAP": MacroSpec(("name", "size"), (), "xskmap", (("key", "u32"), ("leaf", "int"))),
    "BPF_SOCKMAP": MacroSpec(("name", "size"), (), "sockmap", (("key", "u32"), ("leaf", "int"))),
    "BPF_SOCKHASH": MacroSpec(("name", "key", "size"), (("key", "u32"), ("size", "10240")),
                              "sockhash", (("leaf", "int"),)),
    "BPF_SK_STORAGE": MacroSpec(("name", "leaf"), (), "sk_storage",
                                (("key", "int"), ("size", "0"))),
    "BPF_INODE_STORAGE": MacroSpec(("name", "leaf"), (), "inode_storage",
                                   (("key", "int"), ("size", "0"))),
    "BPF_TASK_STORAGE": MacroSpec(("name", "leaf"), (), "task_storage",
                                  (("key", "int"), ("size", "0"))),
}

# Macros BCC has that bccless refuses with a clear message rather than mistranslating.
UNSUPPORTED_MACROS = {
    "BPF_TABLE_PUBLIC": "tables shared between BPF modules",
    "BPF_TABLE_SHARED": "tables shared between BPF modules",
    "BPF_ARRAY_OF_MAPS": "map-in-map tables",
    "BPF_HASH_OF_MAPS": "map-in-map tables",
    "BPF_STACK_TRACE_BUILDID": "build-id stack traces",
    "BPF_CGROUP_STORAGE": "cgroup storage",
    "BPF_PERCPU_CGROUP_STORAGE": "cgroup storage",
    "BPF_XDP_REDIRECT_MAP": "generic redirect maps",
    "BPF_QUEUESTACK": "generic queue/stack tables",
}


@dataclass
class MapDecl:
    """One map declared by the user, resolved from its macro invocation."""

    name: str
    kind: str
    macro: str
    key_type: str
    leaf_type: str
    max_entries: str
    flags: str
    line: int
    pin_path: str = ""

    @property
    def map_type(self) -> str:
        if self.kind == "histogram" and self.key_type.strip() != "int":
            return "BPF_MAP_TYPE_HASH"
        return "BPF_MAP_TYPE_" + KINDS[self.kind][0]

    @property
    def inserts_on_increment(self) -> bool:
        """BCC's rule: increment() inserts only on plain hashes (incl. hash histograms)."""
        return self.map_type == "BPF_MAP_TYPE_HASH" and self.kind in ("hash", "histogram")

    @property
    def has_key(self) -> bool:
        return KINDS[self.kind][1] in ("btf", "sizes")

    def c_definition(self) -> str:
        """The libbpf BTF-defined map (one line, replaces the macro invocation)."""
        style = KINDS[self.kind][1]
        parts = [f"__uint(type, {self.map_type});"]
        if self.kind == "ringbuf":
            parts.append(f"__uint(max_entries, ({self.max_entries}) * PAGE_SIZE);")
        elif self.kind == "stacktrace":
            parts.append(f"__uint(max_entries, __bccless_roundup_pow2({self.max_entries}));")
        elif self.max_entries.strip() != "0":
            parts.append(f"__uint(max_entries, {self.max_entries});")
        flags = self.flags.strip()
        if flags and flags != "0":
            parts.append(f"__uint(map_flags, {flags});")
        if style == "btf":
            parts += [f"__type(key, {self.key_type});", f"__type(value, {self.leaf_type});"]
        elif style == "sizes":
            parts += [f"__uint(key_size, sizeof({self.key_type}));",
                      f"__uint(value_size, sizeof({self.leaf_type}));"]
        elif style == "value":
            parts.append(f"__uint(value_size, sizeof({self.leaf_type}));")
        return f"struct {{ {' '.join(parts)} }} {self.name} SEC(\".maps\")"

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "macro": self.macro,
                "map_type": self.map_type, "key_type": self.key_type if self.has_key else None,
                "leaf_type": self.leaf_type if self.kind != "ringbuf" else None,
                "max_entries": self.max_entries, "flags": self.flags, "pin_path": self.pin_path,
                "line": self.line}


def resolve(macro: str, args: List[str], filename: str, line: int) -> MapDecl:
    """Turn one macro invocation (argument source texts) into a :class:`MapDecl`."""
    where = f"{filename}:{line}"
    if macro in UNSUPPORTED_MACROS:
        raise CompileError(f"{where}: {macro}: {UNSUPPORTED_MACROS[macro]} are not supported by bccless")
    spec = MACROS[macro]
    if not spec.required <= len(args) <= len(spec.params):
        raise CompileError(f"{where}: {macro} takes {spec.required}..{len(spec.params)} "
                           f"arguments, got {len(args)}")
    values = dict(spec.defaults)
    values.update(zip(spec.params, args))
    values.update(spec.fixed)
    kind = spec.kind or _string_literal(values["type"], where, macro)
    if kind not in KINDS:
        raise CompileError(f"{where}: unsupported map type: {kind}")
    if kind == "histogram" and values.get("leaf", "u64").strip() not in ("u64", "unsigned long long", "__u64"):
        raise CompileError(f"{where}: histogram leaf type must be u64, got {values['leaf']}")
    if kind == "ringbuf":
        values["size"] = values["pages"]
    flags = values.get("flags", "0")
    default_flags = KINDS[kind][2]
    if default_flags and flags.strip() == "0":
        flags = default_flags
    pin = _string_literal(values["pin"], where, macro) if "pin" in values else ""
    return MapDecl(name=values["name"].strip(), kind=kind, macro=macro,
                   key_type=values.get("key", "int").strip(), leaf_type=values.get("leaf", "u64").strip(),
                   max_entries=values.get("size", "0").strip(), flags=flags.strip(), line=line,
                   pin_path=pin)


def _string_literal(text: str, where: str, macro: str) -> str:
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise CompileError(f"{where}: {macro}: expected a string literal, got {text}")
    return text[1:-1]


# Members giving BCC's method-call syntax a type at parse time.  Only the parse
# sees this struct; the translated program uses the libbpf map instead.
_PARSE_MEMBERS = (
    "_k key; _l leaf;"
    " _l *(*lookup)(_k *); _l *(*lookup_or_init)(_k *, _l *); _l *(*lookup_or_try_init)(_k *, _l *);"
    " int (*update)(_k *, _l *); int (*insert)(_k *, _l *); int (*delete)(_k *);"
    " void (*call)(void *, int); void (*increment)(_k, ...); void (*atomic_increment)(_k, ...);"
    " int (*get_stackid)(void *, u64); int (*push)(_l *, u64); int (*pop)(_l *); int (*peek)(_l *);"
    " int (*perf_submit)(void *, void *, u64); int (*perf_submit_skb)(void *, u64, void *, u64);"
    " int (*ringbuf_output)(void *, u64, u64); void *(*ringbuf_reserve)(u64);"
    " void (*ringbuf_submit)(void *, u64); void (*ringbuf_discard)(void *, u64);"
    " u64 (*ringbuf_query)(u64); u64 (*perf_read)(int); int (*perf_counter_value)(int, void *, u32);"
    " int (*check_current_task)(int); long (*redirect_map)(int, int);"
    " _l *(*sk_storage_get)(void *, void *, int); int (*sk_storage_delete)(void *);"
    " _l *(*inode_storage_get)(void *, void *, int); int (*inode_storage_delete)(void *);"
    " _l *(*task_storage_get)(void *, void *, int); int (*task_storage_delete)(void *);"
    " int (*sock_map_update)(void *, void *, u64); int (*sock_hash_update)(void *, void *, u64);"
    " int (*msg_redirect_hash)(void *, void *, u64); int (*sk_redirect_hash)(void *, void *, u64);"
)


def parse_stub() -> str:
    """C text of the parse-time macros for every supported map macro."""
    members = _PARSE_MEMBERS.replace("_k", "__K").replace("_l", "__L")
    out = [
        "#define __BCCLESS_PARSE_TABLE(__K, __L, __N) "
        f"struct __bccless_tbl_##__N {{ {members} }} __N",
        "#define __BCCLESS_SEL(_1, _2, _3, _4, _5, _6, _7, __NAME, ...) __NAME",
    ]
    for macro, spec in MACROS.items():
        valid = range(spec.required, len(spec.params) + 1)
        for count in valid:
            params = spec.params[:count]
            values = dict(spec.defaults)
            values.update({p: p for p in params})
            values.update(spec.fixed)
            key = _macro_arg(values.get("key", "int"), params)
            leaf = _macro_arg(values.get("leaf", "u64"), params)
            args = ", ".join(f"_{p}" for p in params)
            out.append(f"#define __BCCLESS_{macro}_{count}({args}) "
                       f"__BCCLESS_PARSE_TABLE({key}, {leaf}, _name)")
        # __BCCLESS_SEL picks its 8th argument: list helpers from arity 7 down to 1.
        choices = ", ".join(f"__BCCLESS_{macro}_{n}" if n in valid else "__BCCLESS_BAD_ARITY"
                            for n in range(7, 0, -1))
        out.append(f"#define {macro}(...) __BCCLESS_SEL(__VA_ARGS__, {choices})(__VA_ARGS__)")
    return "\n".join(out) + "\n"


def _macro_arg(value: str, params: Tuple[str, ...]) -> str:
    return f"_{value}" if value in params else value
