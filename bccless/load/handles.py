"""The handles a :class:`bccless.object.BPFObject` hands out: programs, name
lookups with attribute access, and element access to non-mmapable data maps."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional

from ..errors import AttachError, LoadError
from .plan import ProgInfo

if TYPE_CHECKING:
    from ..object import BPFObject


class Named:
    """Read-only mapping by name with attribute access (``obj.maps.counts``)."""

    def __init__(self, what: str, items: Dict[str, Any], aliases: Dict[str, str]) -> None:
        self._what, self._items, self._aliases = what, items, aliases

    def __getitem__(self, name: str) -> Any:
        item = self._items.get(self._aliases.get(name, name))
        if item is None:
            raise KeyError(f"no {self._what} named '{name}' (have: "
                           f"{', '.join(self._items) or 'none'})")
        return item() if callable(item) else item

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(exc.args[0]) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> List[str]:
        return list(self._items)

    def values(self) -> List[Any]:
        return [self[n] for n in self._items]

    def items(self) -> List[tuple]:
        return [(n, self[n]) for n in self._items]


class Program:
    """One entry program of a :class:`BPFObject`."""

    def __init__(self, obj: "BPFObject", info: ProgInfo) -> None:
        self._obj = obj
        self._info = info
        self.name: str = info.name
        self.section: str = info.sec_name
        self.prog_type: int = info.prog_type
        self.expected_attach_type: int = info.expected_attach_type
        self.attach_target: str = info.attach_target
        self.autoload: bool = info.autoload
        self.fd: int = -1
        self.insns: Optional[bytes] = None   # final instructions, after load
        self.log: str = ""                   # verifier log of the last load (if requested)

    def set_type(self, prog_type: int, expected_attach_type: int = 0) -> None:
        """Choose the program type before it is loaded (BCC decides at load_func)."""
        self._check_unloaded("set_type")
        self.prog_type, self.expected_attach_type = prog_type, expected_attach_type

    def set_autoload(self, autoload: bool) -> None:
        self._check_unloaded("set_autoload")
        self.autoload = bool(autoload)

    def set_attach_target(self, target: str) -> None:
        """The kernel function/tracepoint of a BTF-attached (tp_btf, fentry, lsm) program."""
        self._check_unloaded("set_attach_target")
        self.attach_target = target

    def _check_unloaded(self, what: str) -> None:
        if self.fd >= 0:
            raise LoadError(f"prog '{self.name}': {what}() after the program was loaded")

    def load(self, *, log_level: int = 0) -> int:
        """Load this program now (the object's maps must exist); returns the fd."""
        if self.fd >= 0:
            return self.fd
        return self._obj._load_program(self, log_level)

    def attach(self) -> Any:
        """Attach where the SEC() name says; returns a :class:`bccless.attach.Link`."""
        from .autoattach import auto_attach_fn

        if self.fd < 0:
            raise AttachError(f"prog '{self.name}': not loaded")
        fn = auto_attach_fn(self._info.sec_prefix, self.attach_target)
        if fn is None:
            raise AttachError(f"prog '{self.name}': section '{self.section}' does not name an "
                              f"attach target; use bccless.attach with prog.fd")
        return fn(self.fd, self.attach_target, self)

    def info(self) -> Dict[str, Any]:
        """The kernel's bpf_prog_info (id, tag, xlated length, ...)."""
        from ..sys import bpf

        return bpf.obj_get_info_by_fd(self.fd, "prog")

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __repr__(self) -> str:
        return f"<Program {self.name} sec={self.section!r} type={self.prog_type} fd={self.fd}>"


class ElemBuffer:
    """Byte-range access to element 0 of a map the kernel cannot mmap."""

    def __init__(self, live_map: Any) -> None:
        self._map = live_map

    def _value(self) -> bytearray:
        from ..sys import bpf

        return bytearray(bpf.map_lookup_elem(self._map.fd, b"\0\0\0\0", self._map.value_size))

    def __getitem__(self, key: slice) -> bytes:
        return bytes(self._value()[key])

    def __setitem__(self, key: slice, data: bytes) -> None:
        from ..sys import bpf

        value = self._value()
        value[key] = data
        bpf.map_update_elem(self._map.fd, b"\0\0\0\0", bytes(value))
