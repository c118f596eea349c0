"""The Redactor core: what it masks, what it keeps, and that its fast paths equal the slow ones."""

from __future__ import annotations

import json
import random
import sys
from collections import namedtuple

import httpx
import pytest

from tests.fakes import fake_key
from vsms_guard import keys
from vsms_guard.redact import REDACTED, SMS_REDACTED, Redactor, core, default_redactor, masked


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


def test_mask_format_keeps_prefix_and_fingerprint_only(key: str) -> None:
    shown = masked(key)
    assert shown == f"vsms_…[redacted:{keys.fingerprint(key, 8)}]"
    assert key[5:] not in shown
    assert masked(fake_key(1)) != masked(fake_key(2))  # two keys stay apart


@pytest.mark.parametrize(
    "template",
    [
        "plain {k} text",
        "GET /mcp?order_id=7&api_key={k}&x=1",
        "GET /mcp?apiKey={k}",
        "wss://virtualsms.io/ws/orders?order_id=1&api_key={k}",
        "> x-api-key: {k}",
        "> X-API-KEY: {k}",
        "Authorization: Bearer {k}",
        "{{'x-api-key': '{k}', 'host': 'virtualsms.io'}}",
        '{{"headers": {{"x-api-key": "{k}"}}}}',
        '{{"text": "{{\\"apiKey\\": \\"{k}\\"}}"}}',
        "[(b'x-api-key', b'{k}'), (b'host', b'h')]",
        "api_key='{k}' other=1",
        "prefix{k}suffix-after-space {k}",
        "%3D{k}",
        "\\n{k}\\n",
    ],
)
def test_text_masks_keys_in_every_shape(redactor: Redactor, key: str, template: str) -> None:
    line = template.format(k=key)
    clean = redactor.text(line)
    assert key not in clean
    assert key[5:15] not in clean
    assert "redacted" in clean


@pytest.mark.parametrize(
    ("line", "kept", "gone"),
    [
        ("GET /x?token=abc123&page=2", "page=2", "abc123"),
        ("GET /x?key=abc123#top", "#top", "abc123"),
        ("curl -H 'Cookie: sid=abc123' url", "url", "abc123"),
        ('{"password": "hunter22", "user": "bob"}', '"user": "bob"', "hunter22"),
        ('{"webhook_secret": "whsec_zz9", "id": 1}', '"id": 1', "whsec_zz9"),
        ("db_password=hunter22 host=db", "host=db", "hunter22"),
        ("https://alice:hunter22@example.com/x", "alice", "hunter22"),
        ("proxy-authorization: Basic dXNlcjpwYXNz", "proxy-authorization", "dXNlcjpwYXNz"),
        ("authorization=Bearer abc123 next=1", "next=1", "abc123"),  # logfmt: the token too
    ],
)
def test_secret_names_mask_values_whatever_their_shape(
    redactor: Redactor, line: str, kept: str, gone: str
) -> None:
    clean = redactor.text(line)
    assert gone not in clean
    assert kept in clean
    assert REDACTED in clean


@pytest.mark.parametrize(
    "line",
    [
        "vsms_key_rotation_work_frequency is a setting",
        "set vsms_your_key_here in the config",
        "sort_key=name monkey=3 keyboard",
        '"code": "insufficient_balance"',
        '"code": -32602',
        '"code": 404',
        "nothing secret here at all",
    ],
)
def test_ordinary_text_is_kept_byte_for_byte(redactor: Redactor, line: str) -> None:
    assert redactor.text(line) == line
    assert redactor.bytes(line.encode()) == line.encode()


def test_registered_secret_is_masked_in_raw_json_and_url_spellings() -> None:
    secret = 'whsec_Ab/cd"ef gh'
    redactor = Redactor(secrets=[secret])
    spellings = [
        secret,
        json.dumps(secret)[1:-1],
        "whsec_Ab%2Fcd%22ef%20gh",
        "whsec_Ab%2Fcd%22ef+gh",
        'whsec_Ab\\/cd\\"ef gh',  # JSON with "/" escaped, as PHP's json_encode writes it
    ]
    for spelled in spellings:
        clean = redactor.text(f"before {spelled} after")
        assert spelled not in clean, spelled
        assert clean == f"before {masked(secret)} after"


def test_short_and_key_shaped_values_are_not_stored(key: str) -> None:
    redactor = Redactor(secrets=["abc", "", None])  # type: ignore[list-item]
    redactor.add_secret(key)  # masked by pattern already: nothing to store
    assert redactor._secrets == {}
    assert redactor.text("abc " + key) == "abc " + masked(key)


def test_default_redactor_knows_the_environment_key(monkeypatch: pytest.MonkeyPatch) -> None:
    odd = "not-key-shaped-but-secret-42"
    monkeypatch.setenv("VIRTUALSMS_API_KEY", odd)
    assert odd not in default_redactor().text(f"using {odd} now")


def test_sms_fields_are_masked_by_default_and_kept_on_request() -> None:
    payload = {
        "order_id": "o-1",
        "code": "482913",
        "sms_code": "482913",
        "sms_text": "Your code is 482913",
        "messages": [{"content": "Your code is 482913", "sender": "Google"}],
    }
    clean = Redactor().value(payload)
    assert "482913" not in json.dumps(clean)
    assert clean["messages"][0] == {"content": SMS_REDACTED, "sender": "Google"}
    assert clean["order_id"] == "o-1"
    assert Redactor(mask_sms=False).value(payload) == payload


@pytest.mark.parametrize(
    ("line", "masked_line"),
    [
        (
            "SmsResult(code='482913', full_text='Your code is 482913', id=7)",
            f"SmsResult(code='{SMS_REDACTED}', full_text='{SMS_REDACTED}', id=7)",
        ),
        (
            'order=7 sms_code=482913 sms_text="code 482913"',
            f'order=7 sms_code={SMS_REDACTED} sms_text="{SMS_REDACTED}"',
        ),
        ("?code=4829&x=1", f"?code={SMS_REDACTED}&x=1"),
        ('{"code": "G-482913"}', f'{{"code": "{SMS_REDACTED}"}}'),
        ('{"sms_code": "ABCDEF"}', f'{{"sms_code": "{SMS_REDACTED}"}}'),
        # kept: status codes, error words, and an alphabetic ``code`` (VirtualSMS extracts codes
        # from digits, so a word there is an error code; docs/redaction.md says so)
        ("code=200 code=insufficient_balance code=ABCDEF", None),
        ("status_code=482913 content=text/html", None),
    ],
)
def test_sms_fields_in_keyword_and_logfmt_text(line: str, masked_line: str | None) -> None:
    """Reprs and logfmt (``name=value``) carry SMS fields as often as JSON does."""
    assert Redactor().text(line) == (masked_line or line)
    assert Redactor(mask_sms=False).text(line) == line


@pytest.mark.parametrize(
    ("line", "masked_line"),
    [
        (  # websockets at DEBUG: a received push frame
            """< TEXT '{"type":"sms_received","code":"1234","message":"Your code 1234"}'""",
            '< TEXT \'{"type":"sms_received","code":"[redacted:sms]","message":"[redacted:sms]"}\'',
        ),
        (
            '{\\"message\\": \\"Code 1234\\", \\"type\\": \\"sms\\"}',
            f'{{\\"message\\": \\"{SMS_REDACTED}\\", \\"type\\": \\"sms\\"}}',
        ),
        ('{"error": {"code": -32602, "message": "Invalid params"}}', None),
        ('{"type": "expired", "message": "order expired"}', None),
        ('{"type": "sms_sent", "message": "queued"}', None),
    ],
)
def test_push_message_in_text_is_sms_only_near_an_sms_type(
    line: str, masked_line: str | None
) -> None:
    assert Redactor().text(line) == (masked_line or line)
    assert Redactor().bytes(line.encode()) == (masked_line or line).encode()


def test_values_kept_as_they_are_still_lose_keys_and_secrets(key: str) -> None:
    """A matched field whose value stays (SMS kept on request, an error ``code``, a message
    that is no SMS) is still scanned: it used to come out whole, key and all."""
    keep_sms = Redactor(mask_sms=False, secrets=["whsec_abcdef"])
    default = Redactor(secrets=["whsec_abcdef"])
    shown = masked(key)
    assert keep_sms.text(f'{{"full_text": "bad {key}"}}') == f'{{"full_text": "bad {shown}"}}'
    assert keep_sms.text(f"SmsResult(code='{key}')") == f"SmsResult(code='{shown}')"
    secret = masked("whsec_abcdef")
    assert default.text('{"code": "whsec_abcdef"}') == f'{{"code": "{secret}"}}'
    assert default.text(f'{{"message": "bad {key}"}}') == f'{{"message": "bad {shown}"}}'


def test_websocket_push_message_is_sms_content() -> None:
    push = {"type": "sms_received", "code": "1234", "message": "code 1234"}
    assert Redactor().value(push) == {
        "type": "sms_received",
        "code": SMS_REDACTED,
        "message": SMS_REDACTED,
    }
    other = {"type": "expired", "message": "order expired"}
    assert Redactor().value(other) == other


def test_sms_fields_in_json_text_including_json_inside_json() -> None:
    inner = json.dumps({"code": "482913", "full_text": "Your code is 482913", "status": "ok"})
    line = json.dumps({"jsonrpc": "2.0", "result": {"content": [{"type": "text", "text": inner}]}})
    clean = Redactor().text(line)
    assert "482913" not in clean
    assert json.loads(json.loads(clean)["result"]["content"][0]["text"])["status"] == "ok"
    assert Redactor(mask_sms=False).text(line) == line


def test_value_walks_any_depth_and_keeps_shapes(key: str) -> None:
    Pair = namedtuple("Pair", "name value")
    data = {
        "a": [{"b": ({"Api-Key": "short"}, Pair("x", key))}],
        b"raw": b"x-api-key: " + key.encode(),
        "n": 3,
        "none": None,
        "set": {key},
        "request": {"query_string": f"order_id=1&token={key}", "url": f"https://h/?api_key={key}"},
    }
    clean = Redactor().value(data)
    assert key not in repr(clean)
    assert isinstance(clean["a"][0]["b"], tuple)
    assert clean["a"][0]["b"][0] == {"Api-Key": REDACTED}
    assert isinstance(clean["a"][0]["b"][1], Pair)
    assert clean["n"] == 3 and clean["none"] is None
    assert clean["request"]["query_string"].startswith("order_id=1&token=")


def test_value_survives_cycles() -> None:
    loop: list = []
    loop.append(loop)
    assert REDACTED in repr(Redactor().value(loop))


def test_headers_mapping_pairs_and_httpx(key: str) -> None:
    redactor = Redactor()
    mapping = redactor.headers({"X-Api-Key": key, "Accept": "application/json"})
    assert mapping == {"X-Api-Key": masked(key), "Accept": "application/json"}
    pairs = redactor.headers([(b"x-api-key", key.encode()), (b"cookie", b"sid=1")])
    assert pairs == [(b"x-api-key", masked(key).encode()), (b"cookie", REDACTED.encode())]
    real = httpx.Request(
        "GET", "https://h/", headers={"x-api-key": key, "authorization": "Bearer t0k"}
    )
    assert redactor.headers(real.headers) == {
        "host": "h",
        "x-api-key": masked(key),
        "authorization": f"Bearer {REDACTED}",
    }


def test_url_accepts_url_objects(key: str) -> None:
    url = httpx.URL(f"https://virtualsms.io/api/v1/customer/balance?api_key={key}&x=1")
    assert (
        Redactor().url(url)
        == f"https://virtualsms.io/api/v1/customer/balance?api_key={masked(key)}&x=1"
    )


def test_bytes_keep_non_utf8_bytes_exactly(key: str) -> None:
    data = b"\xff\xfe latin \xe9 " + key.encode() + b" \x80\n\x00binary\xff\n"
    assert Redactor().bytes(data) == data.replace(key.encode(), masked(key).encode())


def _corpus(seed: int, lines: int = 400) -> list[str]:
    """Log-like lines mixing keys, secret names, SMS fields and near misses, deterministically."""
    rng = random.Random(seed)
    parts = [
        fake_key(seed) + " ",  # a key ends at a separator; glued to a name it is one token
        "api_key=",
        "?token=",
        "&key=",
        "x-api-key: ",
        "Authorization: Bearer ",
        '"password": "',
        '\\"code\\": \\"',
        "'cookie', '",
        '"content": "',
        '"message": "',
        '"type": "sms_received", ',
        "https://u:p@h/",
        "monkey",
        "keyboard",
        "vsms_id",
        " ",
        "=",
        '"',
        "'",
        ":",
        "&",
        "\\",
        "482913",
        "word",
        "sms_text",
        "b'",
    ]
    return ["".join(rng.choice(parts) for _ in range(rng.randint(1, 12))) for _ in range(lines)]


@pytest.mark.parametrize("seed", range(5))
def test_anchored_scan_equals_a_full_scan(seed: int) -> None:
    """The trigger-anchored search finds exactly what ``pattern.sub`` over every offset finds."""
    redactor = Redactor(secrets=["s3cret-Value"])
    compiled = redactor._compiled
    for line in _corpus(seed) + ["s3cret-Value and s3cret%2DValue"]:
        assert redactor.text(line) == compiled.text.sub(redactor._replace, line), line


@pytest.mark.parametrize("seed", range(3))
def test_re2_and_re_give_identical_bytes(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    data = "\n".join(_corpus(seed)).encode() + b"\n\xff\xfe tail"
    fast = Redactor(secrets=["s3cret-Value"])
    assert fast._compiled.stream is not None, "google-re2 is a dependency: the fast path must run"
    expected = fast.bytes(data)
    monkeypatch.setitem(sys.modules, "re2", None)  # import re2 now fails: pure ``re`` path
    core._re2.cache_clear()
    try:
        slow = Redactor(secrets=["s3cret-Value"])
        assert slow._compiled.stream is None
        assert slow.bytes(data) == expected
        assert (
            slow.text(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
            == expected
        )
    finally:
        core._re2.cache_clear()


def test_text_and_value_never_raise_on_odd_input() -> None:
    redactor = Redactor()
    odd = ["", "\x00", "vsms_", "?key=", '"token":', "\\" * 50 + '"', "=" * 1000]
    for item in odd:
        assert isinstance(redactor.text(item), str)
    assert redactor.value(object) is object
    assert redactor.text("x" * 100_000) == "x" * 100_000


REALISTIC = [
    "GET /mcp?apiKey={k}&order_id=7 HTTP/1.1",
    "> x-api-key: {k}",
    "Authorization: Bearer {k}",
    "curl -H 'Cookie: sid=abc' -H \"X-Api-Key: {k}\" https://virtualsms.io/",
    '{{"headers": {{"x-api-key": "{k}"}}, "code": "482913", "password": "hunter22"}}',
    '{{"text": "{{\\"apiKey\\": \\"{k}\\", \\"sms_code\\": 482913}}"}}',
    "api_key='{k}' token=abc url=https://u:pw@h/?key={k}",
    "[(b'x-api-key', b'{k}'), (b'cookie', b'sid=1')]",
    "using s3cret-Value and s3cret%2DValue",
    "authorization=Bearer abc123 SmsResult(code='482913', sms_text=\"code 482913\")",
]


def test_masking_twice_changes_nothing(key: str) -> None:
    """Hooks run more than once (Sentry: breadcrumb, then event): a mask must survive a mask."""
    redactor = Redactor(secrets=["s3cret-Value"])
    for template in REALISTIC:
        once = redactor.text(template.format(k=key))
        assert key not in once and "s3cret-Value" not in once
        assert redactor.text(once) == once, once
        assert redactor.bytes(once.encode()) == once.encode(), once
    payload = {"headers": {"x-api-key": key}, "code": "1234", "query_string": "token=abc"}
    once = redactor.value(payload)
    assert redactor.value(once) == once


def test_letters_that_lower_case_to_two_characters_do_not_shift_the_scan(key: str) -> None:
    line = "İstanbul İİ api_key=" + key + " ok"  # 'İ'.lower() is two code points
    assert "İ".lower() != "i" and len("İ".lower()) == 2
    assert Redactor().text(line) == "İstanbul İİ api_key=" + masked(key) + " ok"


def test_many_triggers_in_one_long_word_are_each_tried_once(key: str) -> None:
    word = "keytokensecret" * 5_000  # 70 000 characters, 15 000 triggers, no match among them
    line = f"{word} x-api-key: {key}"
    assert Redactor().text(line) == f"{word} x-api-key: {masked(key)}"


def test_default_redactor_registers_the_environment_key_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Adapters call ``default_redactor()`` per record: an unchanged ``VIRTUALSMS_API_KEY`` must
    not be checked again each time (that cost ~18 µs per record), a changed one must be."""
    monkeypatch.setenv("VIRTUALSMS_API_KEY", fake_key("env-once"))
    default_redactor()
    calls: list[object] = []
    original = Redactor.add_secret
    monkeypatch.setattr(
        Redactor, "add_secret", lambda self, v: calls.append(v) or original(self, v)
    )
    for _ in range(3):
        default_redactor()
    assert calls == []
    monkeypatch.setenv("VIRTUALSMS_API_KEY", "rotated-odd-shaped-key")
    assert "rotated-odd-shaped-key" not in default_redactor().text("k=rotated-odd-shaped-key")
    assert calls == ["rotated-odd-shaped-key"]


def test_an_sms_push_on_an_earlier_line_does_not_mask_a_later_error_message() -> None:
    """The push ``type`` must stand in the same line/record as the ``message`` it marks."""
    log = (
        '{"type":"sms","code":"1234","message":"Your code 1234"}\n'
        '{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params: order_id"}}\n'
    )
    expected = (
        '{"type":"sms","code":"[redacted:sms]","message":"[redacted:sms]"}\n'
        '{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params: order_id"}}\n'
    )
    redactor = Redactor()
    assert redactor.text(log) == expected
    assert redactor.bytes(log.encode()) == expected.encode()
    assert redactor.bytes(log.encode() * 200) == expected.encode() * 200  # the RE2 path too


def webhook_secret(seed: int = 0) -> str:
    rng = random.Random(f"whsec-{seed}")
    return "whsec_" + "".join(rng.choice("abcdefghijkLMNOPQ0123456789") for _ in range(32))


def test_webhook_secrets_are_masked_by_shape_without_registration() -> None:
    """SECURITY.md promises webhook secrets are masked: a ``whsec_`` token is, like a key."""
    secret = webhook_secret()
    shown = masked(secret)
    assert shown.startswith("whsec_…[redacted:") and secret not in shown
    assert masked(webhook_secret(1)) != shown  # the fingerprint tells secrets apart
    redactor = Redactor()
    for line in (f"loaded {secret} ok", f"WEBHOOK={secret}", f'{{"webhook": "{secret}"}}'):
        assert redactor.text(line) == line.replace(secret, shown)
        assert redactor.bytes(line.encode()) == line.replace(secret, shown).encode()
    assert redactor.value({"webhook_secret": secret}) == {"webhook_secret": shown}
    assert redactor.text(f"s={shown}") == f"s={shown}"  # masking twice changes nothing
    for doc in ("copy the whsec_… shown once", "prefix whsec_short_word"):
        assert redactor.text(doc) == doc
