"""bccless: BCC tools from cached CO-RE objects, loaded by a pure-Python CO-RE loader.

The public API follows libbpf's workflow (:class:`bccless.object.BPFObject`).
Imports here stay minimal so that ``import bccless`` is cheap on the warm
path: public names are resolved on first use.
"""

__version__ = "0.1.0"

_LAZY = {"BPFObject": "bccless.object", "Program": "bccless.object",
         "open_object": "bccless.object"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bccless' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
