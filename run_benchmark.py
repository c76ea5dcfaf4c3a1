#!/usr/bin/env python
"""medvlp-bench command line (see ``python run_benchmark.py --help``)."""

import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
