"""``python -m cudacnn``: the same as the ``cudacnn`` command."""
import sys

from .cli import main

sys.exit(main())
