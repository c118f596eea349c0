"""The 7 prompts of the Node.js server (same names and arguments, our own wording)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

ServiceArg = Annotated[str, Field(description="Service id or name, e.g. 'discord'")]
CountryArg = Annotated[
    str | None, Field(description="Country id or ISO code; cheapest in stock if omitted")
]
LimitArg = Annotated[str | None, Field(description="How many countries to compare (default 5)")]

FLOW = (
    "1. Call virtualsms_find_cheapest for the service to see countries with numbers in stock.\n"
    "2. Call virtualsms_create_order with the service and the chosen country; note order_id "
    "and phone_number.\n"
    "3. Enter the phone number in the service's sign-up form.\n"
    "4. Call virtualsms_wait_for_sms with the order_id; it returns the code when the SMS "
    "arrives (a timeout does not cancel the order).\n"
    "5. If no SMS comes, call virtualsms_cancel_order for a refund once the 120 s hold has "
    "passed, or virtualsms_swap_number for a different number.\n"
    "Never paste the API key into the chat: the server already holds it."
)


def _verify(service: str, country: str | None) -> str:
    where = f" in country {country}" if country else " in the cheapest country with stock"
    return f"Get a phone number for {service}{where} and receive its verification code.\n\n{FLOW}"


def register(server: MCPServer) -> None:
    """Add the 7 prompts to ``server``."""

    @server.prompt(name="verify-whatsapp", description="Verify a WhatsApp account by SMS.")
    def verify_whatsapp() -> str:
        return _verify("WhatsApp (service id 'whatsapp')", None)

    @server.prompt(name="verify-telegram", description="Verify a Telegram account by SMS.")
    def verify_telegram() -> str:
        return _verify("Telegram (service id 'telegram')", None)

    @server.prompt(name="verify-google", description="Verify a Google account by SMS.")
    def verify_google(country: CountryArg = None) -> str:
        return _verify("Google (service id 'google')", country)

    @server.prompt(
        name="find-cheapest-number", description="Compare prices and stock for a service."
    )
    def find_cheapest_number(service: ServiceArg, limit: LimitArg = None) -> str:
        count = limit or "5"
        return (
            f"Call virtualsms_find_cheapest with service '{service}' and limit {count}. Show "
            "each country with its price and how many numbers are in stock, cheapest first, "
            "and recommend one. Do not buy anything until the user confirms."
        )

    @server.prompt(name="verify-any-service", description="Verify an account on any service.")
    def verify_any_service(service: ServiceArg, country: CountryArg = None) -> str:
        return (
            f"First call virtualsms_search_services with query '{service}' to find its service "
            f"id.\n\n{_verify(service, country)}"
        )

    @server.prompt(
        name="recover-verification", description="Pick up an order whose code did not arrive."
    )
    def recover_verification() -> str:
        return (
            "Call virtualsms_list_orders with status 'waiting' to find the open orders. For "
            "each, call virtualsms_get_sms: if a code is there, use it. Otherwise call "
            "virtualsms_wait_for_sms again, or once the 120 s hold has passed, "
            "virtualsms_swap_number for a new number or virtualsms_cancel_order for a refund."
        )

    @server.prompt(
        name="check-account-status", description="Summarise balance, open orders and spending."
    )
    def check_account_status() -> str:
        return (
            "Call virtualsms_get_balance, virtualsms_list_orders (status 'waiting') and "
            "virtualsms_get_stats, then summarise: balance in USD, open orders with their "
            "numbers, and spending and success rate over the last 30 days."
        )
