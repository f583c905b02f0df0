"""Entry point of ``python -m pipeline``."""

import sys

from pipeline.distmeta import refuse_metadata

# Before any library loads its plugins: entry points of metadata planted where python -m runs.
refuse_metadata(sys.path[0])

from pipeline._cli import main  # noqa: E402 - after the refusal: pydantic loads plugins

sys.exit(main())
