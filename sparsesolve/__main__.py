"""Command line: ``python -m sparsesolve demo [--device cpu|gpu]``."""

import sys

from ._demo import main

if __name__ == "__main__":
    sys.exit(main())
