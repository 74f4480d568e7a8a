"""The ``bccless`` command line (placeholder entry, filled by subcommand modules)."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bccless")
    parser.parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
