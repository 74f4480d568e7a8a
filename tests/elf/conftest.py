"""Fixtures for the ELF reader tests: BPF objects compiled from the C sources
in tests/data/elf with clang-19, once per session."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, List

import pytest

from elf_build import DATA, compile_bpf

@pytest.fixture(scope="session")
def build(tmp_path_factory) -> Callable[..., Path]:
    """build('full.bpf.c', name='full.bpf.o', extra=[...]) -> compiled object path."""
    root = tmp_path_factory.mktemp("elf")
    cache = {}

    def _build(src: str, name: str = "", extra: List[str] = ()) -> Path:
        key = (src, name, tuple(extra))
        if key not in cache:
            path = DATA / src if not os.path.isabs(src) else Path(src)
            out = root / (name or src.replace(".c", ".o"))
            cache[key] = compile_bpf(path, out, list(extra))
        return cache[key]

    return _build


@pytest.fixture(scope="session")
def full_obj(build) -> Path:
    return build("full.bpf.c")


@pytest.fixture
def write_c(tmp_path) -> Callable[[str, str], Path]:
    """write_c(name, source) -> a compiled object from inline C."""
    def _write(name: str, source: str) -> Path:
        src = tmp_path / f"{name}.bpf.c"
        src.write_text(source)
        return compile_bpf(src, tmp_path / f"{name}.bpf.o")
    return _write
