"""vsms-guard: security and compliance toolkit around the VirtualSMS MCP server."""

__version__ = "0.1.0"
