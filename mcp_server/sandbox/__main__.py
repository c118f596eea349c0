"""``python -m mcp_server.sandbox``: the same as ``vsms-mcp sandbox``."""

import sys

from mcp_server.sandbox.cli import main

sys.exit(main(sys.argv[1:], prog="python -m mcp_server.sandbox"))
