"""Everything a load needs, in plain data that survives a round trip to disk.

A :class:`LoadPlan` is the relocation cache's unit: the object's programs and
maps (what ``open`` shows), the object BTF as it will be uploaded, and per
program the final instructions with the places where map fds go.  Building
it needs the ELF reader, the linker and kernel BTF; *using* it needs none of
them, which is what makes a warm load fast.  Types here are light on purpose
(no dataclasses, no BTF imports): this module is on the warm path.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from ..elf.spec import MapSpec, ObjectSpec
    from ..link.linker import LinkedObject, LinkedProgram

Layout = Dict[str, Tuple[int, int, str]]


class _Record:
    """A slotted record with keyword construction and dict (de)serialization."""

    __slots__: Tuple[str, ...] = ()
    _defaults: Dict[str, Any] = {}

    def __init__(self, **kw: Any) -> None:
        for name in self.__slots__:
            if name in kw:
                value = kw.pop(name)
            else:
                default = self._defaults.get(name)
                value = default() if callable(default) else default
            setattr(self, name, value)
        if kw:
            raise TypeError(f"{type(self).__name__}: unknown fields {', '.join(kw)}")

    def to_dict(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'name', '')}>"


class ProgInfo(_Record):
    """An entry program as ``open`` describes it (SEC() facts, no code)."""

    __slots__ = ("name", "sec_name", "prog_type", "expected_attach_type", "attach_target",
                 "sec_prefix", "sleepable", "attach_btf", "autoload", "sec_flags")
    _defaults = {"prog_type": 0, "expected_attach_type": 0, "attach_target": "",
                 "sec_prefix": "", "sleepable": False, "attach_btf": False,
                 "autoload": True, "sec_flags": 0}


class MapInfo(_Record):
    """A map to create; the fields of :class:`bccless.elf.spec.MapSpec` plus the
    variable layout of global-data maps (``layout``, None for other maps)."""

    __slots__ = ("name", "map_type", "key_size", "value_size", "max_entries", "flags",
                 "numa_node", "map_extra", "pinning", "key_type_id", "value_type_id",
                 "inner", "init_slots", "sec_name", "internal", "data", "mmapable",
                 "var_name", "layout")
    _defaults = {"flags": 0, "numa_node": 0, "map_extra": 0, "pinning": 0,
                 "key_type_id": 0, "value_type_id": 0, "inner": None, "init_slots": dict,
                 "sec_name": ".maps", "internal": "", "data": None, "mmapable": False,
                 "var_name": "", "layout": None}

    def to_spec(self) -> "MapSpec":
        """The equivalent :class:`MapSpec` (for callers that inspect maps before load)."""
        from ..elf.spec import MapSpec

        fields = {n: getattr(self, n) for n in self.__slots__ if n not in ("inner", "layout")}
        return MapSpec(inner=self.inner.to_spec() if self.inner else None, **fields)


class LinkedProg(_Record):
    """One relocated entry program: final instructions with holes for fds.

    ``map_refs``: (insn, map index) whose ld_imm64 imm gets the map fd;
    ``btf_obj_refs``: (insn, module) whose second half gets a module BTF fd;
    ``func_info``/``line_info``: records already packed as BPF_PROG_LOAD wants
    them (8 and 16 bytes, ``insn_off`` in instructions);
    ``poisoned``: final insn -> libbpf's local spec text of a CO-RE
    relocation that could not be resolved (explains verifier failures);
    ``attach_btf_id``/``attach_btf_module``: resolved BTF-id attach target.
    """

    __slots__ = ("name", "insns", "map_refs", "btf_obj_refs", "func_info", "line_info",
                 "poisoned", "attach_btf_id", "attach_btf_module")
    _defaults = {"map_refs": list, "btf_obj_refs": list, "func_info": bytes,
                 "line_info": bytes, "poisoned": dict, "attach_btf_id": 0,
                 "attach_btf_module": ""}


class LoadPlan(_Record):
    """The cacheable description of an object for one kernel.

    ``btf_upload`` is the object BTF sanitized for this kernel (None: the
    kernel has no BTF support); ``btf_func`` says whether the kernel knows
    BTF FUNC records, without which func_info/line_info cannot be sent.
    """

    __slots__ = ("obj_name", "path", "sha256", "license", "kern_version", "programs", "maps",
                 "btf", "btf_upload", "kconfig_map", "kconfig_data", "fd_array_modules",
                 "linked", "boot_id", "has_core", "btf_func", "relocated")
    _defaults = {"programs": list, "maps": list, "btf": None, "btf_upload": None,
                 "btf_func": True, "relocated": False,
                 "kconfig_map": -1, "kconfig_data": None, "fd_array_modules": list,
                 "linked": dict, "boot_id": "", "has_core": False}

    def map_index(self, name: str) -> int:
        """Index of the map called ``name`` (kernel name, variable or section name)."""
        for i, m in enumerate(self.maps):
            if m.name == name or m.var_name == name or m.sec_name == name and m.internal:
                return i
        raise KeyError(name)

    # -- building (cold path only) -------------------------------------------------

    @classmethod
    def from_spec(cls, spec: "ObjectSpec") -> "LoadPlan":
        """The open-level part of a plan: programs, maps, layouts, object BTF."""
        progs = [ProgInfo(name=p.name, sec_name=p.sec_name, prog_type=p.prog_type,
                          expected_attach_type=p.expected_attach_type,
                          attach_target=p.attach_target, sec_prefix=p.sec_prefix,
                          sleepable=p.sleepable, attach_btf=p.attach_btf,
                          autoload=p.autoload, sec_flags=p.sec_flags)
                 for p in spec.programs if not p.is_subprog]
        return cls(obj_name=spec.name, path=spec.path, sha256=spec.sha256,
                   license=spec.license, kern_version=spec.kern_version, programs=progs,
                   maps=[_map_info(spec, m) for m in spec.maps],
                   btf=spec.btf.encode() if spec.btf is not None else None,
                   has_core=any(spec.core_relos.values()))

    def add_linked(self, linked: "LinkedObject",
                   attach_ids: Dict[str, Tuple[int, str]]) -> None:
        """Record the linker's output (object-level values are the same for any
        subset of programs, so later links just add programs)."""
        self.relocated = True
        self.kconfig_map = linked.kconfig_map
        self.kconfig_data = linked.kconfig_data
        self.fd_array_modules = list(linked.fd_array_modules)
        for lp in linked.programs:
            btf_id, module = attach_ids.get(lp.name, (0, ""))
            self.linked[lp.name] = _linked_prog(lp, btf_id, module)

    # -- serialization --------------------------------------------------------------

    def to_json(self, blobs: List[bytes]) -> Dict[str, Any]:
        """A JSON-able dict; byte strings go to ``blobs`` and are referenced by index."""
        d = self.to_dict()
        d["programs"] = [p.to_dict() for p in self.programs]
        d["maps"] = [_map_to_json(m, blobs) for m in self.maps]
        d["linked"] = {n: _linked_to_json(lp, blobs) for n, lp in self.linked.items()}
        for key in ("btf", "btf_upload", "kconfig_data"):
            d[key] = _blob(d[key], blobs)
        return d

    @classmethod
    def from_json(cls, d: Dict[str, Any], blobs: List[bytes]) -> "LoadPlan":
        d = dict(d)
        d["programs"] = [ProgInfo(**p) for p in d["programs"]]
        d["maps"] = [_map_from_json(m, blobs) for m in d["maps"]]
        d["linked"] = {n: _linked_from_json(lp, blobs) for n, lp in d["linked"].items()}
        for key in ("btf", "btf_upload", "kconfig_data"):
            d[key] = _unblob(d[key], blobs)
        return cls(**d)


def _map_info(spec: "ObjectSpec", m: "MapSpec") -> MapInfo:
    layout = None
    if m.internal and m.value_type_id and spec.btf is not None:
        from ..globals import datasec_layout

        layout = datasec_layout(spec.btf, m.value_type_id)
    return MapInfo(name=m.name, map_type=m.map_type, key_size=m.key_size,
                   value_size=m.value_size, max_entries=m.max_entries, flags=m.flags,
                   numa_node=m.numa_node, map_extra=m.map_extra, pinning=m.pinning,
                   key_type_id=m.key_type_id, value_type_id=m.value_type_id,
                   inner=_map_info(spec, m.inner) if m.inner else None,
                   init_slots=dict(m.init_slots), sec_name=m.sec_name, internal=m.internal,
                   data=bytes(m.data) if m.data is not None else None, mmapable=m.mmapable,
                   var_name=m.var_name, layout=layout)


def _linked_prog(lp: "LinkedProgram", btf_id: int, module: str) -> LinkedProg:
    return LinkedProg(
        name=lp.name, insns=bytes(lp.insns), map_refs=[tuple(r) for r in lp.map_refs],
        btf_obj_refs=[tuple(r) for r in lp.btf_obj_refs],
        func_info=_pack(lp.func_info, 2), line_info=_pack(lp.line_info, 4),
        poisoned={idx: res.local_spec for idx, res in lp.core_results if res.poisoned},
        attach_btf_id=btf_id, attach_btf_module=module)


def _pack(records, width: int) -> bytes:
    """u32 records in the kernel's bpf_func_info / bpf_line_info layout."""
    from array import array

    words = array("I")
    for rec in records:
        if len(rec) != width:
            raise ValueError(f"expected {width}-field records, got {rec!r}")
        words.extend(rec)
    return words.tobytes()


def _blob(value: Optional[bytes], blobs: List[bytes]) -> Optional[int]:
    if value is None:
        return None
    blobs.append(bytes(value))
    return len(blobs) - 1


def _unblob(ref: Optional[int], blobs: List[bytes]) -> Optional[bytes]:
    return None if ref is None else blobs[ref]


def _map_to_json(m: MapInfo, blobs: List[bytes]) -> Dict[str, Any]:
    d = m.to_dict()
    d["data"] = _blob(m.data, blobs)
    d["inner"] = _map_to_json(m.inner, blobs) if m.inner else None
    d["init_slots"] = [[k, v] for k, v in m.init_slots.items()]
    if m.layout is not None:
        d["layout"] = [[k, *v] for k, v in m.layout.items()]
    return d


def _map_from_json(d: Dict[str, Any], blobs: List[bytes]) -> MapInfo:
    d = dict(d)
    d["data"] = _unblob(d["data"], blobs)
    d["inner"] = _map_from_json(d["inner"], blobs) if d["inner"] else None
    d["init_slots"] = {int(k): v for k, v in d["init_slots"]}
    if d["layout"] is not None:
        d["layout"] = {name: (off, size, code) for name, off, size, code in d["layout"]}
    return MapInfo(**d)


def _linked_to_json(lp: LinkedProg, blobs: List[bytes]) -> Dict[str, Any]:
    d = lp.to_dict()
    for key in ("insns", "func_info", "line_info"):
        d[key] = _blob(d[key], blobs)
    d["poisoned"] = [[k, v] for k, v in lp.poisoned.items()]
    return d


def _linked_from_json(d: Dict[str, Any], blobs: List[bytes]) -> LinkedProg:
    d = dict(d)
    for key in ("insns", "func_info", "line_info"):
        d[key] = _unblob(d[key], blobs)
    d["poisoned"] = {int(k): v for k, v in d["poisoned"]}
    d["map_refs"] = [tuple(r) for r in d["map_refs"]]
    d["btf_obj_refs"] = [tuple(r) for r in d["btf_obj_refs"]]
    return LinkedProg(**d)
