"""Read sections and BTF-defined maps of a compiled object with llvm-objdump and bpftool."""
from __future__ import annotations

import json
import subprocess
from typing import Dict, List


def sections(objdump: str, path: str) -> List[str]:
    out = subprocess.run([objdump, "-h", path], capture_output=True, text=True, check=True).stdout
    names = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit():
            names.append(parts[1])
    return names


class BTFView:
    """Types of an object's .BTF as bpftool prints them in JSON."""

    def __init__(self, bpftool: str, path: str) -> None:
        out = subprocess.run([bpftool, "-j", "btf", "dump", "file", path], capture_output=True,
                             text=True, check=True).stdout
        self.types = {t["id"]: t for t in json.loads(out)["types"]}

    def by_name(self, name: str, kind: str) -> dict:
        for t in self.types.values():
            if t.get("name") == name and t["kind"] == kind:
                return t
        raise KeyError(f"{kind} {name}")

    def size(self, tid: int) -> int:
        t = self.types[tid]
        if "size" in t:
            return t["size"]
        if t["kind"] == "ARRAY":
            return t["nr_elems"] * self.size(t["type_id"])
        if t["kind"] == "PTR":
            return 8
        return self.size(t["type_id"])

    def maps(self) -> Dict[str, dict]:
        """name -> {type, max_entries, key_size, value_size, map_flags, key, value}."""
        sec = self.by_name(".maps", "DATASEC")
        result = {}
        for var in sec["vars"]:
            v = self.types[var["type_id"]]
            struct = self.types[v["type_id"]]
            info: dict = {}
            for member in struct["members"]:
                ptr = self.types[member["type_id"]]
                target = self.types[ptr["type_id"]]
                if member["name"] in ("key", "value"):
                    info[member["name"] + "_size"] = self.size(ptr["type_id"])
                    info[member["name"]] = target.get("name", "")
                else:
                    info[member["name"]] = target["nr_elems"]
            result[v["name"]] = info
        return result
