"""``python -m bmxlib.bench``: the benchmarks (and the label-management worker process)."""

import sys

from . import main

sys.exit(main())
