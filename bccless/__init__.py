"""bccless: BCC tools from cached CO-RE objects, loaded by a pure-Python CO-RE loader.

The public API follows libbpf's workflow; see :mod:`bccless.api` once loaded.
Imports here stay minimal so that ``import bccless`` is cheap on the warm path.
"""

__version__ = "0.1.0"
