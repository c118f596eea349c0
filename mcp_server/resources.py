"""The 3 markdown resources of the Node.js server (same URIs, our own wording)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

QUICKSTART = """# VirtualSMS quickstart

1. `virtualsms_find_cheapest` with a service (for example `whatsapp`) lists countries with
   numbers in stock, cheapest first.
2. `virtualsms_create_order` with `service` and `country` buys a number: keep `order_id`.
3. Type the number into the sign-up form of the service.
4. `virtualsms_wait_for_sms` with the `order_id` returns the `code` as soon as the SMS arrives.
   A timeout leaves the order open; wait again or cancel it.
5. `virtualsms_cancel_order` refunds an order without SMS once its 120 s hold has passed;
   `virtualsms_swap_number` gives a new number instead.

The API key stays with the server (`VIRTUALSMS_API_KEY` on stdio, `x-api-key` over HTTP).
Never put it in a chat, a URL or a log.
"""

POPULAR = """# Popular services

| service | id | note |
|---|---|---|
| WhatsApp | `whatsapp` | one code per number; keep the number if you need to re-verify |
| Telegram | `telegram` | codes may arrive in the app instead of by SMS |
| Google | `google` | Gmail, YouTube and the Play store share this service |
| Facebook / Instagram | `facebook`, `instagram` | |
| Discord | `discord` | |
| OpenAI | `openai` | |

Use `virtualsms_search_services` to find the exact id of any other service.
"""

PRICING = """# Pricing tips

- Prices differ by country, often tenfold: `virtualsms_find_cheapest` compares them in one call
  and only lists countries that have numbers in stock.
- A number that receives no SMS can be cancelled for a full refund once the 120 s hold has
  passed; a swap gives a new number in the same country.
- Check `virtualsms_get_balance` before buying; a purchase without enough balance fails with
  `insufficient_balance` and costs nothing.
- `virtualsms_get_stats` shows what was spent and how often codes arrived, per service.
"""


def register(server: MCPServer) -> None:
    """Add the 3 resources to ``server``."""

    @server.resource(
        "virtualsms://docs/quickstart",
        name="quickstart",
        description="From zero to a verification code in five tool calls.",
        mime_type="text/markdown",
    )
    def quickstart() -> str:
        return QUICKSTART

    @server.resource(
        "virtualsms://docs/popular-services",
        name="popular-services",
        description="Service ids of the most used services.",
        mime_type="text/markdown",
    )
    def popular_services() -> str:
        return POPULAR

    @server.resource(
        "virtualsms://docs/pricing-tips",
        name="pricing-tips",
        description="How to pay less and get refunds.",
        mime_type="text/markdown",
    )
    def pricing_tips() -> str:
        return PRICING
