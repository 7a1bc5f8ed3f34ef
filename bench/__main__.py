"""``python -m bench``: see bench/__init__.py and the README."""

import sys

from bench.run import main

sys.exit(main())
