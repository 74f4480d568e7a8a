"""Translator details: errors at the user's line, map defaults, method expansions, formats."""
from __future__ import annotations

import pytest

from bccless.bcc import maps_decl, tracepoints
from bccless.bcc.probes import classify
from bccless.bcc.translate import translate
from bccless.compile import compile_c
from bccless.errors import CompileError

from .conftest import data_path, read_format


def test_typo_reported_at_user_line(vmlinux_h):
    with open(data_path("typo.c")) as fh:
        text = fh.read()
    with pytest.raises(CompileError) as err:
        translate(text, filename="typo.c", vmlinux_h=vmlinux_h)
    msg = str(err.value)
    assert msg.startswith("typo.c:7:15: error:") and "bpf_get_current_pid_tgidd" in msg
    assert "    7 |     u32 pid = bpf_get_current_pid_tgidd();" in msg


def test_clang_error_mapped_to_user_line(vmlinux_h, clang):
    """An error only clang (not the parse) sees still names the user's line and text."""
    text = "\n" * 5 + "int f(void *ctx)\n{\n    int a[2];\n    return a[5] / 0 + undeclared_thing;\n}\n"
    with pytest.raises(CompileError) as err:
        compile_c("#line 1 \"user.c\"\n" + text, filename="user.c", vmlinux_h=vmlinux_h,
                  clang=clang, user_text=text)
    assert "user.c:9:" in str(err.value)
    assert "    9 |     return a[5] / 0 + undeclared_thing;" in str(err.value)


def test_line_map_preserves_user_lines(vmlinux_h):
    with open(data_path("kprobe_sock.c")) as fh:
        text = fh.read()
    tr = translate(text, filename="k.c", vmlinux_h=vmlinux_h)
    lines = tr.text.split("\n")
    user_line = text.split("\n").index("    c.ppid = task->real_parent->tgid;") + 1
    translated = next(i for i, line in enumerate(lines, 1) if "c.ppid =" in line)
    assert tr.user_line(translated) == user_line
    assert tr.user_line(1) is None
    assert "__bccless_read_kernel(__bccless_read_kernel(task->real_parent)->tgid)" in lines[translated - 1]


@pytest.mark.parametrize("source, message", [
    ("BPF_ARRAY_OF_MAPS(m, \"x\", 4);\n", "map-in-map"),
    ("BPF_TABLE(\"bogus\", u32, u32, m, 4);\n", "unsupported map type: bogus"),
    ("BPF_HASH(h);\nint f(void *ctx) { u64 k = 0;\n h.frobnicate(&k); return 0; }\n",
     "invalid bpf_table operation frobnicate"),
    ("BPF_HASH(h);\nint f(void *ctx) { u64 k = 0;\n return h.get_stackid(ctx, 0); }\n",
     "get_stackid only available on stacktrace maps"),
    ("BPF_HISTOGRAM(d, int, 8);\nBPF_TABLE(\"histogram\", int, u32, x, 4);\n",
     "histogram leaf type must be u64"),
])
def test_unsupported_constructs_name_the_line(vmlinux_h, source, message):
    with pytest.raises(CompileError) as err:
        translate(source, filename="bad.c", vmlinux_h=vmlinux_h)
    assert message in str(err.value)
    assert "bad.c:" in str(err.value)


def test_increment_inserts_only_on_plain_hash(vmlinux_h):
    text = ("BPF_HASH(h, u32);\nBPF_PERCPU_HASH(p, u32);\nBPF_ARRAY(a, u64, 4);\n"
            "int f(void *ctx) { u32 k = 1;\n h.increment(k);\n p.increment(k, 3);\n"
            " a.atomic_increment(k);\n return 0; }\n")
    lines = translate(text, filename="i.c", vmlinux_h=vmlinux_h).text.split("\n")
    h_line = next(line for line in lines if "bpf_map_lookup_elem(&h," in line)
    p_line = next(line for line in lines if "bpf_map_lookup_elem(&p," in line)
    a_line = next(line for line in lines if "bpf_map_lookup_elem(&a," in line)
    assert "BPF_NOEXIST" in h_line and "+= 1" in h_line
    assert "BPF_NOEXIST" not in p_line and "+= 3" in p_line
    assert "__sync_fetch_and_add(__bccless_leaf, 1)" in a_line and "BPF_NOEXIST" not in a_line


def test_map_defaults():
    h = maps_decl.resolve("BPF_HASH", ["x"], "f.c", 1)
    assert (h.key_type, h.leaf_type, h.max_entries, h.map_type) == ("u64", "u64", "10240", "BPF_MAP_TYPE_HASH")
    hist = maps_decl.resolve("BPF_HISTOGRAM", ["d", "struct k"], "f.c", 1)
    assert (hist.map_type, hist.max_entries, hist.leaf_type) == ("BPF_MAP_TYPE_HASH", "64", "u64")
    assert hist.inserts_on_increment
    arr = maps_decl.resolve("BPF_HISTOGRAM", ["d"], "f.c", 1)
    assert arr.map_type == "BPF_MAP_TYPE_ARRAY" and not arr.inserts_on_increment
    lpm = maps_decl.resolve("BPF_LPM_TRIE", ["t", "struct k"], "f.c", 1)
    assert lpm.flags == "BPF_F_NO_PREALLOC"
    pinned = maps_decl.resolve("BPF_TABLE_PINNED", ['"hash"', "u32", "u32", "m", "8", '"/sys/fs/bpf/m"'],
                               "f.c", 1)
    assert pinned.pin_path == "/sys/fs/bpf/m" and pinned.kind == "hash"


def test_tracepoint_format_parsing():
    tp = tracepoints.parse_format("sched", "sched_switch", read_format("sched", "sched_switch"))
    fields = {f.name: f for f in tp.fields}
    assert fields["prev_comm"].c_decl == "char prev_comm[16]" and fields["prev_comm"].offset == 8
    assert fields["prev_state"].c_decl == "s64 prev_state"
    assert fields["next_pid"].offset == 56 and fields["next_pid"].c_decl == "s32 next_pid"
    exec_tp = tracepoints.parse_format("sched", "sched_process_exec",
                                       read_format("sched", "sched_process_exec"))
    assert exec_tp.fields[0].c_decl == "u32 data_loc_filename" and exec_tp.fields[0].data_loc
    openat = tracepoints.parse_format("syscalls", "sys_enter_openat",
                                      read_format("syscalls", "sys_enter_openat"))
    text = openat.c_definition()
    assert "char __pad_12;" in text and "char __pad_15;" in text and "const char * filename;" in text


def test_missing_tracepoint_is_a_compile_error(vmlinux_h):
    def reader(cat, evt):
        raise CompileError(f"tracepoint {cat}:{evt} does not exist on this kernel")
    with pytest.raises(CompileError, match="nope:missing"):
        translate("TRACEPOINT_PROBE(nope, missing) { return 0; }\n", filename="t.c",
                  tracepoint_formats=reader, vmlinux_h=vmlinux_h)


def test_classify_prefixes():
    assert classify("kprobe__sys_clone").section == "kprobe/sys_clone"
    assert classify("kretprobe__do_exit").kind == "kretprobe"
    tp = classify("tracepoint__block__block_rq_issue")
    assert (tp.section, tp.target) == ("tracepoint/block/block_rq_issue", "block:block_rq_issue")
    assert classify("kfunc__vmlinux__vfs_read").section == "fentry/vfs_read"
    plain = classify("trace_entry")
    assert (plain.section, plain.kind, plain.auto_attach) == ("bccless/trace_entry", "", False)


def test_user_struct_clashing_with_kernel(vmlinux_h):
    """A struct vmlinux.h also defines: the kernel's when compatible, else renamed."""
    text = ("struct mnt_namespace { struct ns_common ns; };\n"
            "struct req { int not_a_kernel_field; };\n"
            "int f(struct pt_regs *ctx, struct req *r) { return r->not_a_kernel_field; }\n")
    tr = translate(text, filename="c.c", vmlinux_h=vmlinux_h)
    assert "struct req___bccless *r" in tr.text
    assert "struct mnt_namespace { struct ns_common ns; }" not in tr.text
    assert any("mnt_namespace: using the kernel's" in w for w in tr.warnings)
