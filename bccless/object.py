"""The library's public API: a BPF object in libbpf's open / load / attach workflow.

::

    with BPFObject.open("x.bpf.o") as obj:
        obj.rodata.target_pid = 42          # before load: initial values
        obj.load()                          # relocate (cached), maps, programs
        links = obj.attach()                # every program whose SEC() names a target
        print(obj.bss.counter)              # live value, mmapped
        obj.maps.counts[0]                  # a bccless.maps.Map after load

``open`` only reads the file: when the relocation cache already holds this
object for this kernel, not even the ELF is parsed.  ``load(programs=False)``
creates maps only, so a caller (the BCC layer) can pick each program's type
at run time and load programs one by one with :meth:`Program.load`.
Everything is released by :meth:`BPFObject.close` (idempotent, also on GC).
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, List, Optional, Union

from .errors import CacheError, LoadError
from .globals import GlobalData
from .load import LazyLogger
from .load.handles import ElemBuffer, Named, Program
from .load.plan import LoadPlan

log = LazyLogger(__name__)

Source = Union[str, bytes, "os.PathLike[str]"]
_F_RDONLY_PROG = 0x80
_BTF_ATTACH_PROG_TYPES = (26, 29)   # BPF_PROG_TYPE_TRACING, BPF_PROG_TYPE_LSM


class BPFObject:
    """An opened (and later loaded) BPF object; see the module doc."""

    def __init__(self, plan: LoadPlan, *, spec: Any = None, cache_key: Optional[dict] = None,
                 cache: Any = None, kconfig: Optional[str] = None,
                 btf_custom_path: Optional[str] = None, pin_root_path: str = "/sys/fs/bpf",
                 source: Any = None, open_name: Optional[str] = None) -> None:
        """Use :meth:`open`; this wires an already built or cached plan."""
        self._plan, self._spec, self._source = plan, spec, source
        self._key, self._cache = cache_key, cache
        self._kconfig, self._btf_custom_path, self._pin_root = kconfig, btf_custom_path, \
            pin_root_path
        self.name: str = plan.obj_name
        self.loaded = False
        self._closed = False
        self._btf_fd = -1
        self._btf: Any = None
        self._maps: Optional[list] = None            # live Map objects after load
        self._mmaps: Dict[int, Any] = {}
        self._links: List[Any] = []
        self._slots_filled = False
        self._open_name = open_name
        self._images = {i: bytearray(m.data if m.data is not None else bytes(m.value_size))
                        for i, m in enumerate(plan.maps) if m.internal}
        self._views: Dict[int, GlobalData] = {}
        self._progs = {p.name: Program(self, p) for p in plan.programs}
        self.programs = self.progs = Named("program", self._progs, {})

    # -- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, source: Source, name: Optional[str] = None, kconfig: Optional[str] = None,
             btf_custom_path: Optional[str] = None, *, pin_root_path: str = "/sys/fs/bpf",
             use_cache: bool = True, cache_dir: Optional[str] = None) -> "BPFObject":
        """Read an object (path or bytes); no BPF syscall happens here.

        ``name`` overrides the object name (prefix of internal map names),
        ``kconfig`` is extra Kconfig text for ``__kconfig`` externs,
        ``btf_custom_path`` a BTF file to relocate against instead of the
        running kernel's.  With ``use_cache`` a relocation-cache hit skips the
        ELF parse entirely.
        """
        from .load import build_plan, kernel, relocache

        if isinstance(source, (bytes, bytearray, memoryview)):
            data, path = bytes(source), None
        else:
            path = os.fspath(source)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as exc:
                from .errors import ELFError

                raise ELFError(f"{path}: cannot read BPF object: {exc.strerror}") from None
        sha = hashlib.sha256(data).hexdigest()
        cache = key = plan = None
        if use_cache:
            custom = ""
            if btf_custom_path:
                with open(btf_custom_path, "rb") as f:
                    custom = hashlib.sha256(f.read()).hexdigest()
            cache = relocache.RelocCache(cache_dir)
            key = relocache.make_key(sha, kernel=kernel.kernel_identity(), name=name,
                                     kconfig=kconfig, btf_custom=custom)
            plan = cache.get(key)
            if plan is not None and plan.boot_id and plan.boot_id != kernel.boot_id():
                plan = None
        spec = None
        if plan is None:
            spec, plan = build_plan(path if path is not None else data, name)
        else:
            plan.path = path or plan.path
            log.debug("%s: load plan from the relocation cache", plan.path)
        return cls(plan, spec=spec, cache_key=key, cache=cache, kconfig=kconfig,
                   btf_custom_path=btf_custom_path, pin_root_path=pin_root_path,
                   source=path if path is not None else data, open_name=name)

    # -- maps and global data ----------------------------------------------------

    @property
    def maps(self) -> Named:
        """Maps by name: MapSpec before load, live :class:`bccless.maps.Map` after."""
        items: Dict[str, Any] = {}
        aliases: Dict[str, str] = {}
        for i, m in enumerate(self._plan.maps):
            items[m.name] = (self._maps[i] if self._maps is not None
                             else (lambda m=m: m.to_spec()))
            if m.var_name and m.var_name != m.name:
                aliases[m.var_name] = m.name
        return Named("map", items, aliases)

    def map_spec(self, name: str) -> Any:
        """The :class:`bccless.elf.spec.MapSpec` of map ``name`` (before or after load)."""
        try:
            return self._plan.maps[self._plan.map_index(name)].to_spec()
        except KeyError:
            raise KeyError(f"no map named '{name}'") from None

    @property
    def btf(self) -> Any:
        """The object's own BTF (a :class:`bccless.btf.parse.BTF`), or None.

        Parsed on first use only: typed map access needs it, loading does not.
        """
        if self._btf is None and self._spec is not None:
            self._btf = self._spec.btf
        if self._btf is None and self._plan.btf is not None:
            from .btf.parse import BTF

            self._btf = BTF.from_bytes(self._plan.btf, source=f"{self._plan.path} .BTF")
        return self._btf

    def section(self, name: str) -> GlobalData:
        """The global variables of data section ``name`` ('.data', 'rodata', 'data.custom')."""
        sec = name if name.startswith(".") else "." + name
        for i, m in enumerate(self._plan.maps):
            if m.internal and m.sec_name == sec:
                if m.layout is None:
                    raise LoadError(f"section '{sec}' has no BTF variable layout")
                view = self._views.get(i)
                if view is None:
                    view = self._views[i] = GlobalData.from_layout(
                        sec, m.layout, self._images[i], read_only=sec == ".kconfig")
                    if self._maps is not None:
                        self._rebind(i)
                return view
        have = [m.sec_name for m in self._plan.maps if m.internal]
        raise KeyError(f"no global data section '{sec}' (have: {', '.join(have) or 'none'})")

    rodata = property(lambda self: self.section(".rodata"), doc="``.rodata`` variables")
    data = property(lambda self: self.section(".data"), doc="``.data`` variables")
    bss = property(lambda self: self.section(".bss"), doc="``.bss`` variables")
    kconfig = property(lambda self: self.section(".kconfig"), doc="``.kconfig`` values")

    def _rebind(self, idx: int) -> None:
        """Back a view with the live map: its mmap, or element reads/writes."""
        view = self._views.get(idx)
        if view is None:
            return
        m = self._plan.maps[idx]
        read_only = bool(m.flags & _F_RDONLY_PROG)
        buf = self._mmaps.get(idx)
        view.rebind(buf if buf is not None else ElemBuffer(self._maps[idx]), read_only)

    # -- loading -----------------------------------------------------------------

    def load(self, programs: bool = True) -> None:
        """Relocate, upload BTF, create maps and (unless ``programs=False``) load
        every autoload program.  On failure everything created is released."""
        from .load import btf_upload, maps as load_maps
        from .maps import Map

        if self._closed:
            raise LoadError(f"object '{self.name}' is closed")
        if self.loaded:
            raise LoadError(f"object '{self.name}' is already loaded")
        self.loaded = True
        plan = self._plan
        wanted = [p.name for p in self._progs.values() if p.autoload] if programs else []
        try:
            if not plan.relocated or any(n not in plan.linked for n in wanted):
                self._link(wanted)
            self._btf_fd = btf_upload.upload(plan.btf_upload, self.name)
            images = {i: bytes(img) for i, img in self._images.items()}
            if plan.kconfig_map >= 0 and plan.kconfig_data is not None:
                images[plan.kconfig_map] = plan.kconfig_data
            created = load_maps.create_maps(plan, images, self._btf_fd, self._pin_root)
            self._mmaps = created.mmaps
            self._maps = [Map(fd) for fd in created.fds]
            for i in self._views:
                self._rebind(i)
            for name in wanted:
                self._progs[name].load()
        except BaseException:
            self._release()
            raise

    def _link(self, wanted: List[str]) -> None:
        """Cold path: parse the ELF if the plan came from the cache, relocate,
        and store the extended plan in the relocation cache."""
        from .load import build_plan, link_into

        if self._spec is None:     # the plan came from the cache: it only lacks programs
            self._spec = build_plan(self._source, self._open_name)[0]
        link_into(self._plan, self._spec, wanted, kconfig=self._kconfig,
                  btf_custom_path=self._btf_custom_path)
        if self._cache is not None:
            try:
                self._cache.put(self._key, self._plan)
            except CacheError as exc:
                log.warning("relocation cache not updated: %s", exc)

    def _load_program(self, prog: Program, log_level: int) -> int:
        from .load import kernel, programs as load_progs

        if self._maps is None:
            raise LoadError(f"prog '{prog.name}': object '{self.name}' has no maps yet: "
                            f"call load(programs=False) first")
        lp = self._plan.linked.get(prog.name)
        if lp is None:
            self._link([prog.name])
            lp = self._plan.linked[prog.name]
        btf_id, module = lp.attach_btf_id, lp.attach_btf_module
        if prog.prog_type in _BTF_ATTACH_PROG_TYPES and (
                not btf_id or prog.attach_target != prog._info.attach_target
                or prog.expected_attach_type != prog._info.expected_attach_type):
            btf_id, module = kernel.resolve_attach_btf_id(
                prog.name, prog.expected_attach_type, prog.attach_target)
        plan = self._plan
        req = load_progs.ProgramLoad(
            prog.name, prog.section, prog.prog_type, prog.expected_attach_type, plan.license,
            plan.kern_version or kernel.kernel_version_code(), attach_btf_id=btf_id,
            attach_btf_module=module,
            flags=load_progs.prog_flags(prog._info.sleepable, prog._info.sec_flags))
        fd, insns, prog.log = load_progs.load_program(
            req, lp, [m.fd for m in self._maps], self._btf_fd, plan.fd_array_modules,
            ext_info=plan.btf_func, log_level=log_level)
        prog.fd, prog.insns = fd, bytes(insns)
        self._fill_prog_slots()
        return fd

    def _fill_prog_slots(self) -> None:
        """Prog-array initial slots, once every program they name is loaded."""
        from .load.maps import PROG_ARRAY, fill_slots

        plan = self._plan
        if self._slots_filled or not any(m.map_type == PROG_ARRAY and m.init_slots
                                         for m in plan.maps):
            return
        if any(self._progs[n].fd < 0 for m in plan.maps if m.map_type == PROG_ARRAY
               for n in m.init_slots.values() if n in self._progs):
            return

        fill_slots(plan, [m.fd for m in self._maps], lambda name: self._progs[name].fd,
                   maps_only=False)
        self._slots_filled = True

    # -- attaching and lifetime --------------------------------------------------------

    def attach(self) -> List[Any]:
        """Attach every loaded program whose SEC() names a target; returns the links."""
        from .load.autoattach import auto_attach_fn

        links = []
        try:
            for p in self._progs.values():
                if p.fd >= 0 and auto_attach_fn(p._info.sec_prefix, p.attach_target):
                    links.append(p.attach())
        except BaseException:
            for link in reversed(links):
                link.close()
            raise
        self._links.extend(links)
        return links

    def _release(self) -> None:
        for link in reversed(self._links):
            link.close()
        self._links.clear()
        for p in self._progs.values():
            p.close()
        for i, view in self._views.items():     # keep last values readable
            if i in self._mmaps:
                view.rebind(bytearray(self._mmaps[i][:]), True)
        for mm in self._mmaps.values():
            mm.close()
        self._mmaps = {}
        for m in self._maps or ():
            m.close()
        if self._btf_fd >= 0:
            os.close(self._btf_fd)
            self._btf_fd = -1

    def close(self) -> None:
        """Detach links, close programs, maps, mmaps and the BTF fd.  Idempotent."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._release()

    def __enter__(self) -> "BPFObject":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:   # interpreter shutdown: modules may be gone
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "loaded" if self.loaded else "opened"
        return f"<BPFObject {self.name} {state}: {len(self._progs)} programs, " \
               f"{len(self._plan.maps)} maps>"


def open_object(source: Source, **kw: Any) -> BPFObject:
    """Shorthand for :meth:`BPFObject.open`."""
    return BPFObject.open(source, **kw)
