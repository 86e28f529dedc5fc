"""`python -m santamon`: the same as the `santamon` command."""

import sys

from .cli import main

sys.exit(main())
