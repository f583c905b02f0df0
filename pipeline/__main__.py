"""Entry point of ``python -m pipeline``."""

import sys

from pipeline._cli import main

sys.exit(main())
