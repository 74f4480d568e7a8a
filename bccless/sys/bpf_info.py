"""Introspection commands: BPF_OBJ_GET_INFO_BY_FD, BPF_*_GET_NEXT_ID, BPF_*_GET_FD_BY_ID.

Info structs are decoded into plain dicts keyed by the uapi field names (with
``flags`` for a map's ``map_flags``), so ``bccless doctor``, the Map class and
tests read the same names bpftool prints.  Variable-length parts (a program's
map ids, a BTF's or link's name) need a second call with buffers sized from
the first answer, as the kernel fills only what the caller has room for.
"""
from __future__ import annotations

from errno import ENOENT

from bccless.sys import bpf_consts as C
from bccless.sys.bpf_call import _sys_bpf, bpf_error, sys_bpf, sys_bpf_fd
from bccless.sys.ffi import NR_BPF, ffi

_new = ffi.new
_NEXT_ID = {"prog": C.BPF_PROG_GET_NEXT_ID, "map": C.BPF_MAP_GET_NEXT_ID,
            "btf": C.BPF_BTF_GET_NEXT_ID, "link": C.BPF_LINK_GET_NEXT_ID}
_FD_BY_ID = {"prog": C.BPF_PROG_GET_FD_BY_ID, "map": C.BPF_MAP_GET_FD_BY_ID,
             "btf": C.BPF_BTF_GET_FD_BY_ID, "link": C.BPF_LINK_GET_FD_BY_ID}

_NAME_BUF = 4096  # PATH_MAX: uprobe links report a file name


def _kind(kind: str, table: dict[str, object]) -> object:
    try:
        return table[kind]
    except KeyError:
        raise ValueError(f"unknown BPF object kind {kind!r} (expected one of "
                         f"{', '.join(sorted(table))})") from None


def _get_info(fd: int, info) -> None:
    a = _new("struct bpf_info_attr *")
    a.bpf_fd = fd
    a.info_len = ffi.sizeof(info[0])
    a.info = info
    sys_bpf(C.BPF_OBJ_GET_INFO_BY_FD, a, ffi.sizeof(a[0]))


def _str(chars) -> str:
    return ffi.string(chars).decode("utf-8", "replace")


def _prog_info(fd: int) -> dict[str, object]:
    i = _new("struct bpf_prog_info *")
    _get_info(fd, i)
    map_ids = []
    if i.nr_map_ids:
        # Second call asking only for the map ids: every other array count is 0.
        j = _new("struct bpf_prog_info *")
        ids = _new("uint32_t[]", i.nr_map_ids)
        j.nr_map_ids = i.nr_map_ids
        j.map_ids = ids
        _get_info(fd, j)
        map_ids = list(ids)[:min(j.nr_map_ids, i.nr_map_ids)]
    return {
        "type": i.type, "id": i.id, "tag": bytes(ffi.buffer(i.tag)).hex(), "name": _str(i.name),
        "jited_prog_len": i.jited_prog_len, "xlated_prog_len": i.xlated_prog_len,
        "load_time": i.load_time, "created_by_uid": i.created_by_uid,
        "nr_map_ids": i.nr_map_ids, "map_ids": map_ids, "ifindex": i.ifindex,
        "gpl_compatible": bool(i.gpl_compatible & 1), "btf_id": i.btf_id,
        "nr_func_info": i.nr_func_info, "nr_line_info": i.nr_line_info,
        "run_time_ns": i.run_time_ns, "run_cnt": i.run_cnt,
        "recursion_misses": i.recursion_misses, "verified_insns": i.verified_insns,
        "attach_btf_obj_id": i.attach_btf_obj_id, "attach_btf_id": i.attach_btf_id,
    }


def _map_info(fd: int) -> dict[str, object]:
    i = _new("struct bpf_map_info *")
    _get_info(fd, i)
    return {
        "type": i.type, "id": i.id, "key_size": i.key_size, "value_size": i.value_size,
        "max_entries": i.max_entries, "flags": i.map_flags, "name": _str(i.name),
        "ifindex": i.ifindex, "btf_vmlinux_value_type_id": i.btf_vmlinux_value_type_id,
        "btf_id": i.btf_id, "btf_key_type_id": i.btf_key_type_id,
        "btf_value_type_id": i.btf_value_type_id, "btf_vmlinux_id": i.btf_vmlinux_id,
        "map_extra": i.map_extra,
    }


def _btf_info(fd: int) -> dict[str, object]:
    i = _new("struct bpf_btf_info *")
    name = _new("char[]", 64)
    i.name = name
    i.name_len = len(name)
    _get_info(fd, i)
    return {"id": i.id, "btf_size": i.btf_size, "name": _str(name),
            "kernel_btf": bool(i.kernel_btf)}


def _link_info(fd: int) -> dict[str, object]:
    i = _new("struct bpf_link_info *")
    _get_info(fd, i)
    out: dict[str, object] = {"type": i.type, "id": i.id, "prog_id": i.prog_id}
    u = i.u
    t = i.type
    if t == C.BPF_LINK_TYPE_RAW_TRACEPOINT:
        j = _new("struct bpf_link_info *")
        name = _new("char[]", _NAME_BUF)
        j.u.raw_tracepoint.tp_name = name
        j.u.raw_tracepoint.tp_name_len = _NAME_BUF
        _get_info(fd, j)
        out.update(tp_name=_str(name), cookie=j.u.raw_tracepoint.cookie)
    elif t == C.BPF_LINK_TYPE_TRACING:
        tr = u.tracing
        out.update(attach_type=tr.attach_type, target_obj_id=tr.target_obj_id,
                   target_btf_id=tr.target_btf_id, cookie=tr.cookie)
    elif t == C.BPF_LINK_TYPE_CGROUP:
        out.update(cgroup_id=u.cgroup.cgroup_id, attach_type=u.cgroup.attach_type)
    elif t == C.BPF_LINK_TYPE_ITER:
        out.update(map_id=u.iter.map_id)
    elif t == C.BPF_LINK_TYPE_NETNS:
        out.update(netns_ino=u.netns.netns_ino, attach_type=u.netns.attach_type)
    elif t in (C.BPF_LINK_TYPE_XDP, C.BPF_LINK_TYPE_TCX, C.BPF_LINK_TYPE_NETKIT):
        out.update(ifindex=u.ifindexed.ifindex)
        if t != C.BPF_LINK_TYPE_XDP:
            out.update(attach_type=u.ifindexed.attach_type)
    elif t == C.BPF_LINK_TYPE_NETFILTER:
        nf = u.netfilter
        out.update(pf=nf.pf, hooknum=nf.hooknum, priority=nf.priority, flags=nf.flags)
    elif t == C.BPF_LINK_TYPE_PERF_EVENT:
        out.update(_perf_link_info(fd, u.perf_event.type))
    return out


def _perf_link_info(fd: int, pe_type: int) -> dict[str, object]:
    out: dict[str, object] = {"perf_event_type": pe_type}
    if pe_type == C.BPF_PERF_EVENT_EVENT:
        j = _new("struct bpf_link_info *")
        _get_info(fd, j)
        ev = j.u.perf_event_event
        out.update(config=ev.config, event_type=ev.ev_type, cookie=ev.cookie)
        return out
    if pe_type not in (C.BPF_PERF_EVENT_UPROBE, C.BPF_PERF_EVENT_URETPROBE, C.BPF_PERF_EVENT_KPROBE, C.BPF_PERF_EVENT_KRETPROBE, C.BPF_PERF_EVENT_TRACEPOINT):
        return out
    j = _new("struct bpf_link_info *")
    name = _new("char[]", _NAME_BUF)
    pe = j.u.perf_event
    pe.name = name
    pe.name_len = _NAME_BUF
    _get_info(fd, j)
    if pe_type == C.BPF_PERF_EVENT_TRACEPOINT:
        out.update(tp_name=_str(name), cookie=pe.a)
    elif pe_type in (C.BPF_PERF_EVENT_UPROBE, C.BPF_PERF_EVENT_URETPROBE):
        out.update(file_name=_str(name), offset=pe.offset, cookie=pe.a, ref_ctr_offset=pe.b)
    else:
        out.update(func_name=_str(name), offset=pe.offset, addr=pe.a, missed=pe.b, cookie=pe.c)
    return out


_DECODERS = {"prog": _prog_info, "map": _map_info, "btf": _btf_info, "link": _link_info}


def obj_get_info_by_fd(fd: int, kind: str) -> dict[str, object]:
    """Decoded ``struct bpf_{prog,map,btf,link}_info`` of ``fd`` (``kind`` names which)."""
    return _kind(kind, _DECODERS)(fd)


def get_next_id(kind: str, start_id: int) -> int | None:
    """The next prog/map/btf/link id after ``start_id`` (0 for the first); None at the end."""
    cmd = _kind(kind, _NEXT_ID)
    a = _new("struct bpf_get_id_attr *")
    a.start_id = start_id
    if _sys_bpf(NR_BPF, cmd, a, ffi.sizeof(a[0])) < 0:
        err = ffi.errno
        if err == ENOENT:
            return None
        raise bpf_error(err, cmd)
    return a.next_id


def get_fd_by_id(kind: str, obj_id: int) -> int:
    """A new fd for the prog/map/btf/link with id ``obj_id`` (needs CAP_SYS_ADMIN)."""
    cmd = _kind(kind, _FD_BY_ID)
    a = _new("struct bpf_get_id_attr *")
    a.start_id = obj_id
    return sys_bpf_fd(cmd, a, ffi.sizeof(a[0]))
