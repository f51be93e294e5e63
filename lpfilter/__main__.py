"""``python -m lpfilter``: the same as the ``lpfilter`` command."""
import sys

from lpfilter.cli import main

sys.exit(main())
