"""``python -m lpfilter``, and the ``lpfilter`` command (setup.py's console script).

Start-up makes some 10^5 objects (modules, classes, functions) and no garbage, yet the
cyclic collector ran 15-20 times over them while a quick command imported (about 2 ms of
``lpfilter print``). It is off from here until the command's module is imported and its
arguments parsed; then ``cli.main`` freezes what start-up made (never garbage, and never
looked at again) and turns it back on, since a watcher runs for months.
"""
import gc
import sys


def main() -> int:
    """The process's command: ``cli.main`` without a collection during start-up."""
    gc.disable()
    from lpfilter.cli import main as run
    return run()


if __name__ == "__main__":
    sys.exit(main())
