"""``bccless object relocate`` / ``object show`` output."""
from __future__ import annotations

import json

from .conftest import KCONFIG

from bccless.cli import main


def test_relocate_json(compile_obj, kernel_btf_paths, tmp_path, capsys):
    from bccless.elf.object import open_object_spec

    obj = compile_obj("core_kinds")
    label = next(k for k in kernel_btf_paths if "5.10" in k)
    assert main(["object", "relocate", obj, "--btf", kernel_btf_paths[label], "--json",
                 "--kernel-version", "5.10.240"]) == 0
    out = json.loads(capsys.readouterr().out)
    spec = open_object_spec(obj)
    assert [p["name"] for p in out["programs"]] == ["fields", "direct", "types", "enums"]
    fields = out["programs"][0]
    assert fields["section"] == "tracepoint/syscalls/sys_enter_getpid"
    assert all(len(h) == 16 for h in fields["insns"])
    assert len(fields["insns"]) == len(spec.program("fields").insns) // 8
    tgid = [r for r in out["relocations"]
            if r["program"] == "fields" and "struct task_struct.tgid " in r["spec"]]
    assert tgid and tgid[0]["kind"] == "byte_off" and tgid[0]["to"] == 2236   # Debian 5.10
    # the relocated value is in the printed instruction (ALU imm of 'r1 = 2236')
    raw = bytes.fromhex(fields["insns"][tgid[0]["insn"]])
    assert int.from_bytes(raw[4:], "little", signed=True) == 2236
    assert any(r["poisoned"] and "__state" in r["spec"] for r in out["relocations"])


def test_relocate_text_and_kconfig(compile_obj, kernel_btf_paths, tmp_path, capsys):
    kc = tmp_path / "config"
    kc.write_text(KCONFIG)
    label = next(k for k in kernel_btf_paths if "6.1" in k)
    assert main(["object", "relocate", compile_obj("calls"), "--btf", kernel_btf_paths[label],
                 "--kconfig", str(kc), "--kernel-version", "6.1.192", "--disasm"]) == 0
    out = capsys.readouterr().out
    assert "prog 'main_a' (tracepoint/syscalls/sys_enter_getpid)" in out
    assert "call bpf_map_lookup_elem#1" in out
    assert "r2 = subprog[pc+" in out            # the bpf_loop callback
    assert "programs: tail_target: 7 insns" in out


def test_relocate_core_text(compile_obj, kernel_btf_paths, capsys):
    label = next(k for k in kernel_btf_paths if "5.10" in k)
    assert main(["object", "relocate", compile_obj("core_kinds"), "--btf",
                 kernel_btf_paths[label], "--program", "fields"]) == 0
    out = capsys.readouterr().out
    assert ("prog 'fields': relo #0: kind <byte_off> (0), spec is [" in out)
    assert "struct task_struct.tgid (0:93 @ offset 1268)" in out
    assert "r1 = 2236" in out
    assert "no matching targets found" in out and "call unknown#195896080" in out


def test_relocate_error_exit(compile_obj, capsys):
    assert main(["object", "relocate", compile_obj("ambig"), "--btf",
                 compile_obj("ambig_target_conflict")]) == 1
    assert "field offset ambiguity" in capsys.readouterr().err


def test_show(compile_obj, capsys):
    assert main(["object", "show", compile_obj("calls")]) == 0
    out = capsys.readouterr().out
    assert "not_loaded" in out and "entry, no autoload" in out
    assert "leaf" in out and "(subprog)" in out
    assert "calls.kconfig" in out and "CONFIG_HZ" in out and "kconfig int[4]" in out
