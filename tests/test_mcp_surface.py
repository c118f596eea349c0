"""The listed surface equals the Node.js server's (FACTS §2), plus the pure helpers under it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from freezegun import freeze_time
from mcp import Client

from mcp_server.http_app import RateLimiter, query_refusal
from mcp_server.orders import cooldown, extract_code, order_view
from mcp_server.server import build_server
from mcp_server.settings import Settings, check_base_url, from_env
from tests.fakes import fake_key
from vsms_guard.errors import GuardError

# FACTS §2, transcribed: name -> (parameters with "!" required / "=default" / "(lo..hi)", hints)
NODE_TOOLS = {
    "virtualsms_list_services": ("search", "R-IO"),
    "virtualsms_list_countries": ("service", "R-IO"),
    "virtualsms_get_price": ("service! country!", "R-IO"),
    "virtualsms_get_balance": ("currency", "R-IO"),
    "virtualsms_create_order": ("service! country!", "---O"),
    "virtualsms_get_sms": ("order_id!", "R-IO"),
    "virtualsms_cancel_order": ("order_id!", "-DIO"),
    "virtualsms_wait_for_sms": ("order_id! timeout_seconds=60(5..600)", "R-IO"),
    "virtualsms_find_cheapest": ("service! limit=5", "R-IO"),
    "virtualsms_search_services": ("query!", "R-IO"),
    "virtualsms_swap_number": ("order_id!", "---O"),
    "virtualsms_list_orders": ("status", "R-IO"),
    "virtualsms_get_order": ("order_id!", "R-IO"),
    "virtualsms_cancel_all_orders": ("", "-DIO"),
    "virtualsms_order_history": (
        "status service country since_days(1..365) limit=20(..50)",
        "R-IO",
    ),
    "virtualsms_get_stats": ("since_days=30", "R-IO"),
    "virtualsms_get_profile": ("", "R-IO"),
    "virtualsms_get_transactions": ("type from to limit=50(1..200) offset=0", "R-IO"),
}
NODE_PROMPTS = {
    "verify-whatsapp": {},
    "verify-telegram": {},
    "verify-google": {"country": False},
    "find-cheapest-number": {"service": True, "limit": False},
    "verify-any-service": {"service": True, "country": False},
    "recover-verification": {},
    "check-account-status": {},
}
NODE_RESOURCES = {
    "virtualsms://docs/quickstart",
    "virtualsms://docs/popular-services",
    "virtualsms://docs/pricing-tips",
}


def _expected_params(spec: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for word in spec.split():
        name, bounds = (word.split("(") + [""])[:2]
        info: dict[str, Any] = {"required": name.endswith("!")}
        name = name.rstrip("!")
        if "=" in name:
            name, default = name.split("=")
            info["default"] = int(default)
        if bounds:
            lo, hi = bounds.rstrip(")").split("..")
            info["minimum"] = int(lo) if lo else None
            info["maximum"] = int(hi) if hi else None
        out[name] = info
    return out


def _hints(annotations: Any) -> str:
    return "".join(
        letter if flag else "-"
        for letter, flag in zip(
            "RDIO",
            (
                annotations.read_only_hint,
                annotations.destructive_hint,
                annotations.idempotent_hint,
                annotations.open_world_hint,
            ),
            strict=True,
        )
    )


@pytest.fixture(scope="module")
def listed() -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with Client(build_server(Settings())) as client:
            return {
                "tools": (await client.list_tools()).tools,
                "prompts": (await client.list_prompts()).prompts,
                "resources": (await client.list_resources()).resources,
                "texts": {
                    uri: (await client.read_resource(uri)).contents[0].text
                    for uri in NODE_RESOURCES
                },
                "prompt": await client.get_prompt(
                    "verify-any-service", {"service": "discord", "country": "GB"}
                ),
            }

    return anyio.run(go)


def test_tools_match_the_node_server(listed: dict[str, Any]) -> None:
    tools = {t.name: t for t in listed["tools"]}
    assert set(tools) == set(NODE_TOOLS)  # 18, and no alias is listed
    for name, (spec, hints) in NODE_TOOLS.items():
        tool = tools[name]
        schema = tool.input_schema
        expected = _expected_params(spec)
        assert set(schema.get("properties", {})) == set(expected), name
        required = {p for p, info in expected.items() if info["required"]}
        assert set(schema.get("required", [])) == required, name
        for param, info in expected.items():
            prop = schema["properties"][param]
            assert "anyOf" not in prop and prop.get("type") in ("string", "integer"), name
            assert prop.get("default") == info.get("default"), (name, param)
            assert prop.get("minimum") == info.get("minimum"), (name, param)
            assert prop.get("maximum") == info.get("maximum"), (name, param)
        assert _hints(tool.annotations) == hints, name
        assert tool.description


def test_transaction_type_is_an_enum(listed: dict[str, Any]) -> None:
    tool = next(t for t in listed["tools"] if t.name == "virtualsms_get_transactions")
    assert tool.input_schema["properties"]["type"]["enum"] == [
        "deposit",
        "purchase",
        "refund",
        "admin_credit",
    ]


def test_prompts_and_resources(listed: dict[str, Any]) -> None:
    prompts = {p.name: {a.name: a.required for a in p.arguments or []} for p in listed["prompts"]}
    assert prompts == NODE_PROMPTS
    assert {str(r.uri) for r in listed["resources"]} == NODE_RESOURCES
    assert all(r.mime_type == "text/markdown" for r in listed["resources"])
    assert all(text.startswith("# ") for text in listed["texts"].values())
    text = listed["prompt"].messages[0].content.text
    assert "discord" in text and "GB" in text and "virtualsms_wait_for_sms" in text


def test_unknown_tool_is_a_tool_error_not_a_protocol_error() -> None:
    async def go() -> Any:
        async with Client(build_server(Settings())) as client:
            return await client.call_tool("virtualsms_teleport", {})

    result = anyio.run(go)
    body = json.loads(result.content[0].text)
    assert result.is_error and body["success"] is False and body["error"] == "unknown_tool"
    assert "virtualsms_teleport" in body["message"]


@pytest.mark.parametrize(
    ("tool", "arguments", "argument"),
    [
        ("virtualsms_wait_for_sms", {"order_id": "o1", "timeout_seconds": 1}, "timeout_seconds"),
        ("virtualsms_order_history", {"limit": 100}, "limit"),
        ("virtualsms_get_price", {"service": "telegram"}, "country"),
        ("check_price", {"service": "telegram"}, "country"),  # legacy names too
        ("virtualsms_get_transactions", {"type": "gift"}, "type"),
    ],
)
def test_invalid_arguments_are_json_payloads(
    tool: str, arguments: dict[str, Any], argument: str
) -> None:
    """Schema rejections answer like every other failure: isError, a JSON body, no pydantic
    text or help URL (docs/mcp-server.md)."""

    async def go() -> Any:
        async with Client(build_server(Settings(base_url="http://127.0.0.1:9"))) as client:
            return await client.call_tool(tool, arguments)

    result = anyio.run(go)
    text = result.content[0].text
    body = json.loads(text)
    assert result.is_error and body["success"] is False and body["error"] == "invalid_arguments"
    assert [d["argument"] for d in body["details"]] == [argument]
    assert argument in body["message"] and body["details"][0]["problem"]
    assert "pydantic" not in text and "errors.pydantic.dev" not in text


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Your code is 123456", "123456"),
        ("G-4821 is your Google code", "4821"),
        ("call 123 then 98765432", "98765432"),
        ("ref 1234567890 code 5555", "5555"),  # a 10-digit run is not a code
        ("no digits", None),
        (None, None),
    ],
)
def test_extract_code(text: str | None, code: str | None) -> None:
    assert extract_code(text) == code


def test_order_view_adds_messages_code_and_aliases() -> None:
    view = order_view(
        {
            "order_id": "o1",
            "messages": [
                {"content": "Code 7788 for Telegram", "sender": "Telegram", "received_at": "t"},
                {"content": "Code 9999", "sender": "Telegram", "received_at": "t2"},
            ],
        }
    )
    assert view["code"] == view["sms_code"] == "7788"
    assert view["sms_text"] == "Code 7788 for Telegram"
    legacy = order_view({"order_id": "o2", "sms_text": "pin 24680", "messages": None})
    assert legacy["messages"][0]["content"] == "pin 24680" and legacy["code"] == "24680"
    empty = order_view({"order_id": "o3", "messages": []})
    assert empty["code"] is None and empty["messages"] == [] and empty["sms_text"] is None


@freeze_time("2026-01-01T12:00:00Z")
def test_cooldown_uses_the_one_clock() -> None:
    order = {"order_id": "o1", "cancel_available_at": "2026-01-01T12:01:30Z"}
    held = cooldown(order, "cancel_available_at")
    assert held is not None
    assert held["wait_seconds"] == 90 and held["retry_at"] == "2026-01-01T12:01:30Z"
    assert held["cooldown_active"] is True and "cancel" in held["message"]
    assert cooldown(order, "cancel_available_at", datetime(2026, 1, 1, 12, 2, tzinfo=UTC)) is None
    assert cooldown({"swap_available_at": None}, "swap_available_at") is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://virtualsms.io",
        "http://virtualsms.io",  # plain http off loopback would expose the key
        "https://user:pw@virtualsms.io",
        "https://virtualsms.io/?baseUrl=x",
        "not a url",
    ],
)
def test_base_url_must_be_safe(url: str) -> None:
    with pytest.raises(GuardError):
        check_base_url(url)


def test_base_url_accepted_forms() -> None:
    assert check_base_url("https://virtualsms.io/") == "https://virtualsms.io"
    assert check_base_url("http://127.0.0.1:8780") == "http://127.0.0.1:8780"
    assert Settings(base_url="https://virtualsms.io").ws_base_url == "wss://virtualsms.io"


def test_http_settings_never_take_the_env_key() -> None:
    env = {"VIRTUALSMS_API_KEY": fake_key("env"), "VIRTUALSMS_BASE_URL": "http://localhost:9"}
    assert from_env(env).env_key == fake_key("env")
    http = from_env(env, http_mode=True)
    assert http.env_key is None and http.base_url == "http://localhost:9"
    with pytest.raises(GuardError):
        Settings(http_mode=True, env_key=fake_key("env"))


def test_query_refusal() -> None:
    key = fake_key("query")
    for query in (f"apiKey={key}", f"api_key={key}", "x-api-key=abc", f"q={key}", "API_KEY="):
        reason = query_refusal(query)
        assert reason is not None and "x-api-key header" in reason and key not in reason
    assert "operator" in (query_refusal("baseUrl=http://evil.example") or "")
    assert query_refusal("") is None and query_refusal("session=1") is None


def test_rate_limiter_token_bucket() -> None:
    now = [100.0]
    limiter = RateLimiter(per_minute=3, clock=lambda: now[0])
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    wait = limiter.hit("a")
    assert wait is not None and 19.0 < wait <= 20.0
    assert limiter.hit("b") is None  # per caller
    now[0] += 20.0
    assert limiter.hit("a") is None and limiter.hit("a") is not None


def test_error_results_are_json_payloads() -> None:
    async def go() -> Any:
        async with Client(build_server(Settings(env_key=None))) as client:
            return await client.call_tool("virtualsms_get_profile", {})

    result = anyio.run(go)
    body = json.loads(result.content[0].text)
    assert result.is_error and body["success"] is False and body["error"] == "api_key_required"


def test_every_legacy_name_reaches_its_tool() -> None:
    """Each short name of FACTS §2 is answered by the tool it stands for (here: without a key,
    each tool's own answer), never as an unknown tool."""
    from mcp_server.tools import LEGACY_ALIASES

    assert set(LEGACY_ALIASES) == {
        "list_services",
        "list_countries",
        "check_price",
        "find_cheapest",
        "search_service",
        "get_balance",
        "buy_number",
        "check_sms",
        "wait_for_code",
        "active_orders",
    }
    # An unreachable upstream: discovery tools fail with network_error, account tools with
    # api_key_required, schema problems as validation errors: all name the real tool's rules.
    server = build_server(Settings(base_url="http://127.0.0.1:9", read_retries=0))
    args = {"service": "whatsapp", "country": "US", "query": "w", "order_id": "abc"}

    async def go() -> dict[str, Any]:
        async with Client(server) as client:
            return {name: await client.call_tool(name, args) for name in LEGACY_ALIASES}

    for name, result in anyio.run(go).items():
        text = result.content[0].text
        assert result.is_error and "Unknown tool" not in text, name
        assert json.loads(text)["error"] in ("network_error", "api_key_required"), name
