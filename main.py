"""`python main.py ...` does what the `hotline-supervisor` command does."""

import sys

from supervisor.cli import main

if __name__ == "__main__":
    sys.exit(main())
