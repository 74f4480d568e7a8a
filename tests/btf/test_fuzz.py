"""Malformed BTF must fail with BTFError only: never IndexError, struct.error,
UnicodeDecodeError, a hang or a silently wrong re-encoding.

Deterministic (seeded) truncations, bit flips, word overwrites, header
tweaks and random blobs, applied to hand-built, clang-built and split BTF;
each case is parsed, fully decoded, looked up, sized and re-encoded."""
from __future__ import annotations

import logging
import random
import struct
import time
from typing import Callable, List, Optional, Tuple

from bccless.btf import BTF
from bccless.errors import BTFError

from .conftest import build_all_kinds
from .test_roundtrip import _split_pair

CASES_PER_SEED = 8000


def _exercise(data: bytes, base: Optional[BTF]) -> None:
    btf = BTF.from_bytes(data, base=base)
    records = []
    for tid in btf.ids():
        btf.kind(tid)
        btf.name(tid)
        records.append(btf[tid])
        try:
            btf.resolve_size(tid)
        except BTFError:
            pass
        btf.skip_mods_and_typedefs(tid) if tid % 3 == 0 else None
    for name in ("int", "foo", "", "bits"):
        btf.find(name)
        btf.find_essential(name)
    assert btf.encode() == data
    if base is None:
        # decode -> encode -> decode must give the same records.
        fresh = BTF.new()
        for t in records:
            fresh.add(t)
        again = BTF.from_bytes(fresh.encode())
        assert [again[t] for t in again.ids()] == records


def _mutations(rng: random.Random, blob: bytes) -> List[bytes]:
    n = len(blob)
    out = [blob[:rng.randrange(n)]]
    flipped = bytearray(blob)
    for _ in range(rng.randint(1, 6)):
        pos = rng.randrange(n)
        flipped[pos] ^= 1 << rng.randrange(8)
    out.append(bytes(flipped))
    words = bytearray(blob)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(24, n - 3) & ~3
        value = rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF, 1 << 31, rng.getrandbits(32), rng.randrange(48),
                            rng.randrange(64) << 24 | rng.randrange(4)])
        words[pos:pos + 4] = struct.pack("<I", value)
    out.append(bytes(words))
    hdr = bytearray(blob)
    field = rng.choice([2, 3, 4, 8, 12, 16, 20])  # version, flags, then the u32 fields
    if field < 4:
        hdr[field] = rng.randrange(256)
    else:
        struct.pack_into("<I", hdr, field,
                         rng.choice([0, 4, 24, 25, n, n + 4, rng.getrandbits(32)]))
    out.append(bytes(hdr))
    random_len = rng.randrange(0, 96)
    noise = bytes(rng.getrandbits(8) for _ in range(random_len))
    out.append(noise)
    out.append(b"\x9f\xeb\x01\x00" + struct.pack("<I", 24) + noise)
    return out


def _corpus(kinds_object) -> List[Tuple[str, bytes, Optional[BTF]]]:
    raw, _ = build_all_kinds()
    base, split, _ = _split_pair()
    corpus = [("all-kinds", raw.blob(), None), ("all-kinds-be", raw.blob(">"), None),
              ("split", split.blob(), base)]
    if kinds_object is not None:
        corpus.append(("clang", BTF.from_elf(str(kinds_object)).encode(), None))
    return corpus


def _run(corpus, seed: int, cases: int, check: Callable[[bytes, Optional[BTF]], None]):
    rng = random.Random(seed)
    done = failures = 0
    while done < cases:
        label, blob, base = rng.choice(corpus)
        for data in _mutations(rng, blob):
            done += 1
            try:
                check(data, base)
            except BTFError:
                failures += 1
            except Exception as exc:  # noqa: BLE001 - the point of the test
                raise AssertionError(
                    f"{label} mutation #{done} (seed {seed}) raised {type(exc).__name__}: {exc}; "
                    f"data={data.hex()}") from exc
    return done, failures


def test_fuzz_malformed_btf(request):
    try:
        kinds_object = request.getfixturevalue("kinds_object")
    except Exception:  # clang missing: the hand-built corpus still covers every kind
        kinds_object = None
    corpus = _corpus(kinds_object)
    for _, blob, base in corpus:
        _exercise(blob, base)  # the unmutated corpus itself is valid
    start = time.perf_counter()
    total = rejected = 0
    for seed in (1, 2, 3):
        done, failures = _run(corpus, seed, CASES_PER_SEED, _exercise)
        total += done
        rejected += failures
    elapsed = time.perf_counter() - start
    logging.getLogger(__name__).info("%d cases, %d rejected, %.2f s", total, rejected, elapsed)
    assert total >= 20000
    # Both outcomes must be common, or the mutations are not testing anything.
    assert total * 0.2 < rejected < total * 0.95, (rejected, total)
    assert elapsed < 20, elapsed


def test_fuzz_elf_container(kinds_object):
    """Corrupt ELF headers and section tables: ELFError or BTFError, nothing else."""
    from bccless.errors import ELFError
    blob = kinds_object.read_bytes()
    shoff = struct.unpack_from("<Q", blob, 0x28)[0]
    rng = random.Random(7)
    outcomes = {"ok": 0, "error": 0}
    for case in range(3000):
        data = bytearray(blob)
        if case % 5 == 0:
            data = data[:rng.randrange(len(data))]
        else:
            region = rng.choice([(0, 64), (shoff, len(blob))])
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(*region)] ^= 1 << rng.randrange(8)
        try:
            btf = BTF.from_elf(bytes(data))
            for tid in btf.ids():
                btf[tid]
            outcomes["ok"] += 1
        except (ELFError, BTFError):
            outcomes["error"] += 1
    assert outcomes["ok"] > 100 and outcomes["error"] > 100, outcomes
