"""Run the sandbox on a real socket in a background thread, for tests and benchmarks.

Serving itself (socket, uvicorn, start-up wait) is ``mcp_server.serving``, shared with the MCP
HTTP front.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp_server.sandbox.backend import Sandbox
from mcp_server.serving import serving


@contextmanager
def running_sandbox(**sandbox_kwargs: Any) -> Iterator[tuple[Sandbox, str]]:
    """A ``Sandbox(**sandbox_kwargs)`` served by uvicorn on 127.0.0.1 in a background thread."""
    sb = Sandbox(**sandbox_kwargs)
    with serving(sb.app) as url:
        yield sb, url
