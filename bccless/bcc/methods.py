"""BCC map method calls (``counts.increment(key)``) -> libbpf helper calls.

Each call ``<map>.<method>(args)`` found in the AST is replaced by the helper
call with ``&<map>`` as the map argument, reproducing BCC's semantics: e.g.
``increment`` takes the key by value and inserts a missing key only on plain
hash tables; ``lookup_or_try_init`` retries the lookup after a BPF_NOEXIST
insert.  The struct passed to ``perf_submit``/``ringbuf_output``/
``ringbuf_submit`` is recorded per output map, because BCC's ``event()``
builds its ctypes class from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from clang import cindex as ci

from .ast_walk import K, Source, children, is_pointer, strip
from .edits import Edit, Render, Rewriter
from .maps_decl import MapDecl


@dataclass
class EventType:
    """The struct a program sends through an output map (BCC's event layout)."""

    map: str
    method: str
    type_name: str      # C spelling, typedef names kept: 'struct data_t', 'data_t'
    file_scope: bool    # declared at file scope (can be named after the function)
    line: int

    def to_json(self) -> dict:
        return {"map": self.map, "method": self.method, "type": self.type_name, "line": self.line}


Template = Callable[[str, List[str]], str]


def _lookup(m: str, a: List[str]) -> str:
    return f"((typeof({m}.value))bpf_map_lookup_elem(&{m}, {a[0]}))"


def _lookup_init(m: str, a: List[str], fail: str) -> str:
    return (f"({{ typeof({m}.value) __bccless_leaf = (typeof({m}.value))bpf_map_lookup_elem(&{m}, {a[0]}); "
            f"if (!__bccless_leaf) {{ bpf_map_update_elem(&{m}, {a[0]}, {a[1]}, BPF_NOEXIST); "
            f"__bccless_leaf = (typeof({m}.value))bpf_map_lookup_elem(&{m}, {a[0]}); {fail}}} "
            f"__bccless_leaf; }})")


def _increment(atomic: bool, inserts: bool) -> Template:
    def build(m: str, a: List[str]) -> str:
        inc = a[1] if len(a) > 1 else "1"
        found = f"__sync_fetch_and_add(__bccless_leaf, {inc});" if atomic \
            else f"(*__bccless_leaf) += {inc};"
        text = (f"({{ typeof(*{m}.key) __bccless_key = {a[0]}; typeof({m}.value) __bccless_leaf = "
                f"(typeof({m}.value))bpf_map_lookup_elem(&{m}, &__bccless_key); "
                f"if (__bccless_leaf) {{ {found} }}")
        if inserts:
            text += (f" else {{ typeof(*{m}.value) __bccless_zleaf = 0; __bccless_zleaf += {inc}; "
                     f"bpf_map_update_elem(&{m}, &__bccless_key, &__bccless_zleaf, BPF_NOEXIST); }}")
        return text + " })"
    return build


# method -> (argument count range, template); templates get the map name and rendered args
_SIMPLE: Dict[str, tuple] = {
    "lookup": ((1, 1), _lookup),
    "update": ((2, 2), lambda m, a: f"bpf_map_update_elem(&{m}, {a[0]}, {a[1]}, BPF_ANY)"),
    "insert": ((2, 2), lambda m, a: f"bpf_map_update_elem(&{m}, {a[0]}, {a[1]}, BPF_NOEXIST)"),
    "delete": ((1, 1), lambda m, a: f"bpf_map_delete_elem(&{m}, {a[0]})"),
    "lookup_or_try_init": ((2, 2), lambda m, a: _lookup_init(m, a, "")),
    "lookup_or_init": ((2, 2), lambda m, a: _lookup_init(m, a, "if (!__bccless_leaf) return 0; ")),
    "perf_submit": ((3, 3), lambda m, a:
                    f"bpf_perf_event_output({a[0]}, &{m}, BPF_F_CURRENT_CPU, {a[1]}, {a[2]})"),
    "perf_submit_skb": ((4, 4), lambda m, a:
                        f"bpf_perf_event_output({a[0]}, &{m}, ((u64)({a[1]}) << 32) | "
                        f"BPF_F_CURRENT_CPU, {a[2]}, {a[3]})"),
    "ringbuf_output": ((3, 3), lambda m, a: f"bpf_ringbuf_output(&{m}, {a[0]}, {a[1]}, {a[2]})"),
    "ringbuf_reserve": ((1, 1), lambda m, a: f"bpf_ringbuf_reserve(&{m}, {a[0]}, 0)"),
    "ringbuf_submit": ((2, 2), lambda m, a: f"bpf_ringbuf_submit({a[0]}, {a[1]})"),
    "ringbuf_discard": ((2, 2), lambda m, a: f"bpf_ringbuf_discard({a[0]}, {a[1]})"),
    "ringbuf_query": ((1, 1), lambda m, a: f"bpf_ringbuf_query(&{m}, {a[0]})"),
    "get_stackid": ((2, 2), lambda m, a: f"bpf_get_stackid({a[0]}, &{m}, {a[1]})"),
    "push": ((2, 2), lambda m, a: f"bpf_map_push_elem(&{m}, {a[0]}, {a[1]})"),
    "pop": ((1, 1), lambda m, a: f"bpf_map_pop_elem(&{m}, {a[0]})"),
    "peek": ((1, 1), lambda m, a: f"bpf_map_peek_elem(&{m}, {a[0]})"),
    "call": ((2, 2), lambda m, a: f"bpf_tail_call({a[0]}, &{m}, {a[1]})"),
    "perf_read": ((1, 1), lambda m, a: f"bpf_perf_event_read(&{m}, {a[0]})"),
    "perf_counter_value": ((3, 3), lambda m, a:
                           f"bpf_perf_event_read_value(&{m}, {a[0]}, {a[1]}, {a[2]})"),
    "check_current_task": ((1, 1), lambda m, a: f"bpf_current_task_under_cgroup(&{m}, {a[0]})"),
    "redirect_map": ((2, 2), lambda m, a: f"bpf_redirect_map(&{m}, {a[0]}, {a[1]})"),
    "sk_storage_get": ((3, 3), lambda m, a: f"bpf_sk_storage_get(&{m}, {a[0]}, {a[1]}, {a[2]})"),
    "sk_storage_delete": ((1, 1), lambda m, a: f"bpf_sk_storage_delete(&{m}, {a[0]})"),
    "inode_storage_get": ((3, 3), lambda m, a: f"bpf_inode_storage_get(&{m}, {a[0]}, {a[1]}, {a[2]})"),
    "inode_storage_delete": ((1, 1), lambda m, a: f"bpf_inode_storage_delete(&{m}, {a[0]})"),
    "task_storage_get": ((3, 3), lambda m, a: f"bpf_task_storage_get(&{m}, {a[0]}, {a[1]}, {a[2]})"),
    "task_storage_delete": ((1, 1), lambda m, a: f"bpf_task_storage_delete(&{m}, {a[0]})"),
    "sock_map_update": ((3, 3), lambda m, a: f"bpf_sock_map_update({a[0]}, &{m}, {a[1]}, {a[2]})"),
    "sock_hash_update": ((3, 3), lambda m, a: f"bpf_sock_hash_update({a[0]}, &{m}, {a[1]}, {a[2]})"),
    "msg_redirect_hash": ((3, 3), lambda m, a: f"bpf_msg_redirect_hash({a[0]}, &{m}, {a[1]}, {a[2]})"),
    "sk_redirect_hash": ((3, 3), lambda m, a: f"bpf_sk_redirect_hash({a[0]}, &{m}, {a[1]}, {a[2]})"),
}

# which argument carries the event data, for the methods that record a layout
_EVENT_ARG = {"perf_submit": 1, "ringbuf_output": 0, "ringbuf_submit": 0}
_STACK_ONLY = {"get_stackid": "stacktrace"}


class MethodRewriter:
    """Finds map method calls and member uses (``typeof(m.leaf)``) on map variables."""

    def __init__(self, src: Source, rw: Rewriter, maps: Dict[str, MapDecl]) -> None:
        self.src = src
        self.rw = rw
        self.maps = maps
        self.events: Dict[str, EventType] = {}
        self.warnings: List[str] = []

    def _map_of(self, member: "ci.Cursor") -> Optional[MapDecl]:
        kids = children(member)
        if not kids:
            return None
        base = strip(kids[0])
        if base.kind != K.DECL_REF_EXPR:
            return None
        return self.maps.get(base.spelling)

    def visit(self, node: "ci.Cursor", callee_of: Optional["ci.Cursor"] = None) -> bool:
        """Handle one cursor; True when it was a map call or member use."""
        if node.kind == K.CALL_EXPR:
            kids = children(node)
            callee = strip(kids[0]) if kids else None
            if callee is not None and callee.kind == K.MEMBER_REF_EXPR:
                decl = self._map_of(callee)
                if decl is not None:
                    self._call(node, callee, decl, kids[1:])
                    return True
        elif node.kind == K.MEMBER_REF_EXPR and node.spelling in ("key", "leaf"):
            decl = self._map_of(node)
            if decl is not None:
                start, end = self.src.span(node)
                if not self.src.text[start:end].startswith(decl.name):
                    raise self.src.error(node, "cannot use map function inside a macro")
                member = "key" if node.spelling == "key" else "value"
                self.rw.add(Edit(start, end, lambda _r, n=decl.name, m=member: f"(*{n}.{m})"))
                return True
        return False

    def _call(self, call: "ci.Cursor", callee: "ci.Cursor", decl: MapDecl,
              args: List["ci.Cursor"]) -> None:
        src = self.src
        method = callee.spelling
        start, end = src.span(call)
        head = src.text[start:end]
        if not head.startswith(decl.name) or not head.rstrip().endswith(")"):
            raise src.error(call, "cannot use map function inside a macro")
        if method in ("increment", "atomic_increment"):
            template: Template = _increment(method == "atomic_increment", decl.inserts_on_increment)
            arity = (1, 2)
        elif method in _SIMPLE:
            arity, template = _SIMPLE[method]
        else:
            raise src.error(call, f"invalid bpf_table operation {method}")
        if not arity[0] <= len(args) <= arity[1]:
            raise src.error(call, f"{decl.name}.{method}() takes {arity[0]} argument(s), got {len(args)}")
        if method in _STACK_ONLY and decl.kind != _STACK_ONLY[method]:
            raise src.error(call, f"{method} only available on stacktrace maps")
        if method == "insert" and decl.kind in ("array", "percpu_array"):
            line = src.line_of(start)
            self.warnings.append(f"{src.filename}:{line}: warning: {decl.name}.insert() on an "
                                 "array has no effect (array elements always exist)")
        if method in _EVENT_ARG:
            self._record_event(decl, method, args[_EVENT_ARG[method]])
        spans = [src.span(a) for a in args]

        def build(render: Render, name: str = decl.name) -> str:
            return template(name, [render(s, e) for s, e in spans])
        self.rw.add(Edit(start, end, build))

    def _record_event(self, decl: MapDecl, method: str, arg: "ci.Cursor") -> None:
        expr = strip(arg)
        if expr.kind == K.UNARY_OPERATOR and self.src.snippet(expr).lstrip().startswith("&"):
            kids = children(expr)
            ctype = kids[0].type if kids else expr.type
        else:
            ctype = expr.type
            if is_pointer(ctype):
                ctype = ctype.get_pointee()
        canon = ctype.get_canonical()
        if canon.kind != ci.TypeKind.RECORD:
            return
        declaration = canon.get_declaration()
        file_scope = declaration.semantic_parent is not None and \
            declaration.semantic_parent.kind == K.TRANSLATION_UNIT and bool(declaration.spelling)
        name = ctype.spelling.replace("const ", "").replace("volatile ", "").strip()
        self.events[decl.name] = EventType(decl.name, method, name, file_scope,
                                           self.src.line_of(self.src.span(arg)[0]))
