"""The argument parser every command uses: a usage error is one line and exit code 2."""

from __future__ import annotations

import argparse
from typing import NoReturn

from vsms_guard.findings import EXIT_ERROR


class OneLineParser(argparse.ArgumentParser):
    """argparse prints a usage block before its error; bad input here gets one clear line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
