"""Entry point of ``python -m gates``."""

import sys

from gates._cli import main

sys.exit(main())
