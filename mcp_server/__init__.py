"""The drop-in VirtualSMS MCP server (`vsms-mcp`): same tools as `virtualsms-mcp`, keys kept safe.

Modules: ``settings`` (operator configuration), ``api`` (the upstream REST client), ``orders``
(result shapes), ``waiting`` (``wait_for_sms``), ``tools``/``prompts``/``resources`` (the MCP
surface), ``server`` (assembly), ``http_app`` (StreamableHTTP front), ``serving`` (uvicorn on a
socket, shared with the sandbox), ``cli`` (``vsms-mcp``).
"""
