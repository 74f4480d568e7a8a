"""The syscall layer: the only code in bccless that talks to the kernel directly.

* :mod:`bccless.sys.ffi` - cffi (ABI mode, pre-generated) view of libc, ``syscall()``
* :mod:`bccless.sys.bpf` - every ``bpf(2)`` command bccless uses
* :mod:`bccless.sys.bpf_consts` - uapi ``BPF_*`` constants
* :mod:`bccless.sys.perf` - ``perf_event_open(2)``, perf ioctls, CPU lists
* :mod:`bccless.sys.features` - kernel feature probes, cached per process

Nothing is imported here so that ``import bccless.sys.perf`` does not pay for
the rest.
"""
