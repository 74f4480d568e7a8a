"""BCC's implicit probe reads, expressed with CO-RE.

BCC lets kprobe code write ``sk->__sk_common.skc_dport`` on a kernel pointer
and silently turns the dereference into ``bpf_probe_read``.  The same source
compiled as a libbpf program would be a direct load, which the verifier
rejects.  This pass finds the dereferences BCC would rewrite and wraps each in
``__bccless_read_kernel(expr)`` (``bpf_core_read`` of ``&(expr)``; every
vmlinux.h member access is CO-RE relocated) or, for types that are not the
kernel's (uprobe arguments pointing at user structs), ``__bccless_read(expr)``
(plain ``bpf_probe_read``, as BCC).

External pointers (BCC's rules, simplified): the extra parameters of a program
that are not fundamental types; variables assigned from members of the context
(``(struct sock *)PT_REGS_PARM1(ctx)``, ``(void *)ctx->args[0]``,
``args->ptr``) or from ``bpf_get_current_task()``; and variables assigned from
expressions that read a pointer out of external memory.  Not rewritten: address
computations (``&p->f``), array-typed results (``task->comm``), unevaluated
operands (sizeof, typeof), assignment targets, and code produced by macros.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Set

from clang import cindex as ci

from .ast_walk import (K, Source, binary_operator, body_of, children, is_array, is_arrow,
                       is_pointer, strip, unary_operator, walk)
from .edits import Edit, Rewriter

_CTX_TYPES = ("struct pt_regs", "struct bpf_raw_tracepoint_args", "struct tracepoint__")
_ASSIGN_OPS = ("=",)
_UNEVALUATED = (K.CXX_UNARY_EXPR,)


class ProbeReads:
    """Implicit-read analysis and rewriting of one program function."""

    def __init__(self, src: Source, rw: Rewriter, func: "ci.Cursor") -> None:
        self.src = src
        self.rw = rw
        self.func = func
        params = list(func.get_arguments())
        self.ctx: Optional["ci.Cursor"] = params[0] if params else None
        self.external: Set["ci.Cursor"] = set()
        for param in params[1:]:
            canon = param.type.get_canonical()
            if canon.kind in (ci.TypeKind.POINTER, ci.TypeKind.RECORD):
                self.external.add(param)
        self._ctx_is_probe = self.ctx is not None and \
            self.ctx.type.get_pointee().spelling.startswith(_CTX_TYPES)
        self._memo: Dict["ci.Cursor", bool] = {}

    # -- which expressions denote external memory ----------------------------
    def _ctx_member(self, expr: "ci.Cursor") -> bool:
        """``ctx->x`` / ``ctx->args[i]`` on a kprobe, raw tracepoint or tracepoint context."""
        node = strip(expr)
        if node.kind == K.ARRAY_SUBSCRIPT_EXPR:
            node = strip(children(node)[0])
        if node.kind != K.MEMBER_REF_EXPR or not self._ctx_is_probe:
            return False
        base = strip(children(node)[0]) if children(node) else None
        return base is not None and base.kind == K.DECL_REF_EXPR and base.referenced == self.ctx

    def ext_lvalue(self, expr: "ci.Cursor") -> bool:
        """The expression names memory reached through an external pointer."""
        node = strip(expr)
        if node in self._memo:
            return self._memo[node]
        result = False
        kids = children(node)
        if node.kind == K.MEMBER_REF_EXPR and kids:
            result = self.ext_pointer(kids[0]) if is_arrow(node) else self.ext_lvalue(kids[0])
        elif node.kind == K.UNARY_OPERATOR and kids and unary_operator(self.src, node) == "*":
            result = self.ext_pointer(kids[0])
        elif node.kind == K.ARRAY_SUBSCRIPT_EXPR and len(kids) == 2:
            base = kids[0]
            result = self.ext_lvalue(base) if is_array(strip(base).type) else self.ext_pointer(base)
        self._memo[node] = result
        return result

    def ext_pointer(self, expr: "ci.Cursor") -> bool:
        """The expression's value is a pointer into external memory."""
        node = strip(expr)
        if node.kind == K.DECL_REF_EXPR:
            return node.referenced in self.external
        if node.kind == K.CALL_EXPR:
            return node.spelling == "bpf_get_current_task"
        return (is_pointer(node.type) or is_array(node.type)) and self.ext_lvalue(node)

    # -- propagation ----------------------------------------------------------
    def _source_is_external(self, init: "ci.Cursor") -> bool:
        return self.ext_pointer(init) or self._ctx_member(init)

    def collect(self) -> None:
        """Mark local variables that hold external pointers (two passes reach a fixpoint
        for the usual straight-line code)."""
        body = body_of(self.func)
        if body is None:
            return
        nodes = list(walk(body))
        for _ in range(2):
            for node in nodes:
                if node.kind == K.VAR_DECL and is_pointer(node.type):
                    kids = [k for k in children(node) if k.kind != K.TYPE_REF]
                    if kids and self._source_is_external(kids[-1]):
                        self._add(node)
                elif node.kind == K.BINARY_OPERATOR and binary_operator(self.src, node) in _ASSIGN_OPS:
                    lhs, rhs = children(node)
                    lhs = strip(lhs)
                    if lhs.kind == K.DECL_REF_EXPR and is_pointer(lhs.type) and \
                            self._source_is_external(rhs):
                        self._add(lhs.referenced)

    def _add(self, decl: "ci.Cursor") -> None:
        if decl not in self.external:
            self.external.add(decl)
            self._memo.clear()

    # -- rewriting --------------------------------------------------------------
    def rewrite(self) -> None:
        body = body_of(self.func)
        if body is not None:
            self._visit(body, rvalue=True)

    def _visit(self, node: "ci.Cursor", rvalue: bool) -> None:
        kind = node.kind
        if kind in _UNEVALUATED:
            return
        kids = children(node)
        if kind in (K.MEMBER_REF_EXPR, K.UNARY_OPERATOR, K.ARRAY_SUBSCRIPT_EXPR) and \
                self.ext_lvalue(node):
            self._visit_lvalue(node, kids)
            if rvalue and not is_array(node.type):
                self._read(node)
            return
        if kind == K.UNARY_OPERATOR and kids and unary_operator(self.src, node) == "&":
            self._visit(kids[0], rvalue=False)
            return
        if kind in (K.BINARY_OPERATOR, K.COMPOUND_ASSIGNMENT_OPERATOR) and len(kids) == 2 and \
                binary_operator(self.src, node).endswith("=") and \
                binary_operator(self.src, node) not in ("==", "!=", "<=", ">="):
            self._visit(kids[0], rvalue=False)
            self._visit(kids[1], rvalue=True)
            return
        if kind == K.UNARY_OPERATOR and kids and unary_operator(self.src, node) in ("++", "--"):
            self._visit(kids[0], rvalue=False)
            return
        for kid in kids:
            self._visit(kid, rvalue=True)

    def _visit_lvalue(self, node: "ci.Cursor", kids: List["ci.Cursor"]) -> None:
        """Visit the parts of an external lvalue chain: pointer bases are values, the rest is
        address computation."""
        inner = strip(node)
        if inner is not node:
            self._visit_lvalue(inner, children(inner))
            return
        if node.kind == K.MEMBER_REF_EXPR and kids:
            self._visit(kids[0], rvalue=is_arrow(node))
        elif node.kind == K.UNARY_OPERATOR and kids:
            self._visit(kids[0], rvalue=True)
        elif node.kind == K.ARRAY_SUBSCRIPT_EXPR and len(kids) == 2:
            self._visit(kids[0], rvalue=not is_array(strip(kids[0]).type))
            self._visit(kids[1], rvalue=True)

    def _read(self, node: "ci.Cursor") -> None:
        src = self.src
        span = src.spelling_span(node)
        if span is None or not self._spelled(node, *span):
            return  # produced by a macro body: BCC skips these too
        start, end = span
        kernel = self._kernel_memory(node)
        field = node.referenced if node.kind == K.MEMBER_REF_EXPR else None
        if field is not None and field.kind == K.FIELD_DECL and field.is_bitfield():
            if not kernel:
                raise src.error(node, "implicit read of a bit-field outside kernel types is not supported")
            base_span = src.spelling_span(children(node)[0])
            if base_span is None:
                return
            bstart, bend = base_span
            arrow = is_arrow(node)
            self.rw.add(Edit(start, end, lambda r, s=bstart, e=bend, f=field.spelling, a=arrow:
                             f"BPF_CORE_READ_BITFIELD_PROBED({'' if a else '&'}({r(s, e)}), {f})"))
            return
        macro = "__bccless_read_kernel" if kernel else "__bccless_read"
        self.rw.add(Edit(start, end, lambda r, s=start, e=end, m=macro: f"{m}({r(s, e)})"))

    def _spelled(self, node: "ci.Cursor", start: int, end: int) -> bool:
        text = self.src.text
        if not 0 <= start < end <= len(text):
            return False
        if node.kind == K.MEMBER_REF_EXPR:
            name = node.spelling
            return text[end - len(name):end] == name and \
                text[:end - len(name)].rstrip().endswith(("->", "."))
        if node.kind == K.ARRAY_SUBSCRIPT_EXPR:
            return text[end - 1] == "]"
        return text[start] == "*"

    def _kernel_memory(self, node: "ci.Cursor") -> bool:
        """Is the accessed record one of the kernel's (declared in vmlinux.h)?"""
        for part in walk(node):
            if part.kind == K.MEMBER_REF_EXPR and part.referenced is not None and \
                    self.src.from_vmlinux(part.referenced):
                return True
        target = node.type.get_canonical()
        decl = target.get_declaration()
        return decl.kind != K.NO_DECL_FOUND and self.src.from_vmlinux(decl)


def rewrite_reads(src: Source, rw: Rewriter, func: "ci.Cursor") -> None:
    """Insert the implicit probe reads of one program function."""
    reads = ProbeReads(src, rw, func)
    reads.collect()
    reads.rewrite()
