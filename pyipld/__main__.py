"""``python -m pyipld``."""

import sys

from .cli import main

sys.exit(main())
