import os
import signal
import sys


def _early_interrupt(_signum: int, _frame: object) -> None:
    # Ctrl-C while Python imports the CLI: one line, as later (cli.py), not a traceback from inside an import.
    sys.stderr.write("rdistill: error: interrupted\n")
    os._exit(130)


signal.signal(signal.SIGINT, _early_interrupt)
from rdistill.cli import main  # noqa: E402 - after the handler, so the import itself is covered

signal.signal(signal.SIGINT, signal.default_int_handler)  # from here Ctrl-C is a KeyboardInterrupt the CLI reports
main()
