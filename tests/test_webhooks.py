"""The verifier: every refusal reason, rotation, header shapes, and hostile input."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from vsms_guard.redact import default_redactor
from vsms_guard.replay import MemoryReplayStore
from vsms_guard.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Verifier,
    WebhookError,
    sign,
    verify,
)

NOW = 1_795_000_000
SECRET = "whsec_" + "Zq3" * 10
OTHER = "whsec_" + "Kp7" * 10


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def envelope(event_id: str = "evt_01JABCDEFGHJKMNPQRSTVWXYZ0", created: float = NOW) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "type": "sms.received",
            "created_at": iso(created),
            "data": {
                "order_id": "6f1c2c3e-0000-4000-8000-000000000001",
                "phone_number": "+447700900123",
                "service": "telegram",
                "country": "GB",
                "code": "482913",
                "message": "Your code is 482913",
                "sender": "Telegram",
                "received_at": iso(created),
                "test": False,
            },
        }
    ).encode()


def reason_of(body, headers, secrets=SECRET, **kwargs) -> str:
    with pytest.raises(WebhookError) as info:
        verify(body, headers, secrets, now=kwargs.pop("now", NOW), **kwargs)
    return info.value.reason


def test_sign_then_verify_returns_the_event():
    body = envelope()
    headers = sign(body, SECRET, timestamp=NOW, delivery_id="dlv_1")
    assert headers[SIGNATURE_HEADER].startswith("sha256=")
    assert headers[TIMESTAMP_HEADER] == str(NOW)
    event = verify(body, headers, SECRET, now=NOW)
    assert (event.id, event.type, event.delivery_id, event.timestamp) == (
        "evt_01JABCDEFGHJKMNPQRSTVWXYZ0",
        "sms.received",
        "dlv_1",
        NOW,
    )
    assert event.data["code"] == "482913" and event.test is False


def test_signature_is_hmac_sha256_of_the_raw_body_keyed_with_the_whole_secret():
    import hashlib
    import hmac

    body = envelope()
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(body, SECRET, timestamp=NOW)[SIGNATURE_HEADER] == "sha256=" + expected


@pytest.mark.parametrize(
    "transform",
    [
        lambda s: s,
        lambda s: s.upper().replace("SHA256=", "sha256="),
        lambda s: s.removeprefix("sha256="),
        lambda s: s.removeprefix("sha256=").upper(),
        lambda s: "SHA256=" + s.removeprefix("sha256="),
        lambda s: f"  {s}  ",
    ],
    ids=["prefixed", "upper-hex", "bare", "bare-upper", "upper-prefix", "padded"],
)
def test_signature_forms_accepted(transform):
    body = envelope()
    headers = sign(body, SECRET, timestamp=NOW)
    headers[SIGNATURE_HEADER] = transform(headers[SIGNATURE_HEADER])
    assert verify(body, headers, SECRET, now=NOW).id.startswith("evt_")


@pytest.mark.parametrize(
    "headers",
    [
        lambda h: {k.lower(): v for k, v in h.items()},
        lambda h: {k.upper(): v for k, v in h.items()},
        lambda h: [(k.lower().encode(), v.encode()) for k, v in h.items()],  # ASGI scope
        lambda h: {k.encode(): v.encode() for k, v in h.items()},
    ],
    ids=["lower", "upper", "asgi-pairs", "bytes-map"],
)
def test_header_containers_and_case(headers):
    body = envelope()
    signed = sign(body, SECRET, timestamp=NOW, delivery_id="dlv_x")
    assert verify(body, headers(signed), SECRET, now=NOW).delivery_id == "dlv_x"


def test_several_secrets_accept_either_during_rotation():
    body = envelope()
    for used in (SECRET, OTHER):
        headers = sign(body, used, timestamp=NOW)
        assert verify(body, headers, [OTHER, SECRET], now=NOW).type == "sms.received"
    assert reason_of(body, sign(body, OTHER, timestamp=NOW), [SECRET]) == "mismatch"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h.pop(SIGNATURE_HEADER), "missing_signature"),
        (lambda h: h.update({SIGNATURE_HEADER: "  "}), "missing_signature"),
        (lambda h: h.update({SIGNATURE_HEADER: "sha256=" + "g" * 64}), "malformed_signature"),
        (lambda h: h.update({SIGNATURE_HEADER: "sha256=" + "a" * 63}), "malformed_signature"),
        (lambda h: h.update({SIGNATURE_HEADER: "sha256=" + "a" * 66}), "malformed_signature"),
        (lambda h: h.update({SIGNATURE_HEADER: "ab" * 30 + "  ab"}), "malformed_signature"),
        (lambda h: h.update({SIGNATURE_HEADER: "sha1=" + "a" * 40}), "malformed_signature"),
        (lambda h: h.update({SIGNATURE_HEADER: "é" * 64}), "malformed_signature"),
        (lambda h: h.update({SIGNATURE_HEADER: "a" * 100_000}), "malformed_signature"),
        (lambda h: h.update({SIGNATURE_HEADER: "sha256=" + "0" * 64}), "mismatch"),
        (lambda h: h.pop(TIMESTAMP_HEADER), "missing_timestamp"),
        (lambda h: h.update({TIMESTAMP_HEADER: "yesterday"}), "malformed_timestamp"),
        (lambda h: h.update({TIMESTAMP_HEADER: "١٢٣"}), "malformed_timestamp"),  # Arabic digits
        (lambda h: h.update({TIMESTAMP_HEADER: "9" * 5000}), "malformed_timestamp"),
        (lambda h: h.update({TIMESTAMP_HEADER: str(NOW - 301)}), "stale"),
        (lambda h: h.update({TIMESTAMP_HEADER: str(NOW + 301)}), "future"),
    ],
)
def test_refusal_reasons(mutate, reason):
    body = envelope()
    headers = sign(body, SECRET, timestamp=NOW)
    mutate(headers)
    assert reason_of(body, headers) == reason


def test_window_is_inclusive_and_two_sided():
    body = envelope()
    for ts in (NOW - 300, NOW + 300):
        assert verify(body, sign(body, SECRET, timestamp=ts), SECRET, now=NOW)
    assert reason_of(body, sign(body, SECRET, timestamp=NOW - 11), tolerance=10) == "stale"
    assert reason_of(body, sign(body, SECRET, timestamp=NOW + 11), tolerance=10) == "future"


def test_missing_timestamp_allowed_only_when_not_required():
    body = envelope()
    headers = sign(body, SECRET, timestamp=NOW)
    del headers[TIMESTAMP_HEADER]
    event = verify(body, headers, SECRET, now=NOW, require_timestamp=False)
    assert event.timestamp is None


def test_tampered_body_is_a_mismatch():
    body = envelope()
    headers = sign(body, SECRET, timestamp=NOW)
    assert reason_of(body.replace(b"482913", b"000000"), headers) == "mismatch"


def test_re_serialised_body_is_a_mismatch():
    """The framework pitfall: parse + dump changes the bytes the signature covers."""
    body = envelope()
    headers = sign(body, SECRET, timestamp=NOW)
    reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert reason_of(reserialised, headers) == "mismatch"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not_json"),
        (b"\xff\xfe\x00garbage", "not_json"),
        (b"[1, 2]", "bad_envelope"),  # valid JSON, wrong shape: not "not_json"
        (b"42", "bad_envelope"),
        (b"null", "bad_envelope"),
        (b"[" * 100_000 + b"]" * 100_000, "not_json"),
        (b'{"type": "sms.received", "created_at": "2026-11-27T00:00:00Z"}', "bad_envelope"),
        (b'{"id": "evt_1", "created_at": "2026-11-27T00:00:00Z"}', "bad_envelope"),
        (b'{"id": "evt_1", "type": "sms.received"}', "bad_envelope"),
        (b'{"id": "evt_1", "type": "x", "created_at": "soon"}', "bad_envelope"),
        (b'{"id": "evt_1", "type": "x", "created_at": "2026-11-27T00:00:00"}', "bad_envelope"),
        (
            b'{"id": "evt_1", "type": "x", "created_at": "2026-11-27T00:00:00Z", "data": 3}',
            "bad_envelope",
        ),
    ],
)
def test_body_problems_are_reported_after_authentication(body, reason):
    assert reason_of(body, sign(body, SECRET, timestamp=NOW)) == reason
    assert reason_of(body, sign(body, OTHER, timestamp=NOW)) == "mismatch"


def test_signed_created_at_bounds_replays_of_old_events():
    """The timestamp header may be unsigned: an old body with a fresh timestamp is refused."""
    old = envelope(created=NOW - 4 * 86400)
    assert reason_of(old, sign(old, SECRET, timestamp=NOW)) == "stale"
    assert verify(old, sign(old, SECRET, timestamp=NOW), SECRET, now=NOW, max_age=5 * 86400)
    future = envelope(created=NOW + 3600)
    assert reason_of(future, sign(future, SECRET, timestamp=NOW)) == "future"


def test_replayed_envelope_id_is_refused_even_with_new_delivery_headers():
    store = MemoryReplayStore()
    verifier = Verifier(SECRET, replay_store=store)
    body = envelope()
    verifier.verify(body, sign(body, SECRET, timestamp=NOW, delivery_id="dlv_a"), now=NOW)
    again = sign(body, SECRET, timestamp=NOW + 60, delivery_id="dlv_b")
    with pytest.raises(WebhookError) as info:
        verifier.verify(body, again, now=NOW + 60)
    assert info.value.reason == "replayed"
    other = envelope(event_id="evt_01JABCDEFGHJKMNPQRSTVWXYZ1")
    assert verifier.verify(other, sign(other, SECRET, timestamp=NOW), now=NOW)


def test_refused_deliveries_do_not_consume_the_id():
    store = MemoryReplayStore()
    verifier = Verifier(SECRET, replay_store=store)
    body = envelope()
    with pytest.raises(WebhookError):
        verifier.verify(body, sign(body, OTHER, timestamp=NOW), now=NOW)
    assert verifier.verify(body, sign(body, SECRET, timestamp=NOW), now=NOW)


@pytest.mark.parametrize("secrets", ["", "   ", [], [SECRET, ""], [None], b"bytes-secret"])
def test_empty_or_wrong_secrets_refused_at_construction(secrets):
    with pytest.raises(WebhookError) as info:
        Verifier(secrets)
    assert info.value.reason == "bad_config"


def test_sign_refuses_an_empty_secret():
    with pytest.raises(WebhookError):
        sign(b"{}", "")


def test_parsed_body_is_refused_with_the_raw_body_hint():
    with pytest.raises(WebhookError) as info:
        verify({"id": "evt_1"}, sign(envelope(), SECRET, timestamp=NOW), SECRET, now=NOW)
    assert info.value.reason == "not_raw_body"
    assert "request.body" in str(info.value)


def test_secrets_are_registered_with_the_redactor_and_never_in_errors():
    secret = "whsec_" + "".join(random.Random(5).choices("abcdefXYZ0123456789", k=32))
    verifier = Verifier([secret])
    assert secret not in default_redactor().text(f"oops {secret}")
    assert secret not in repr(verifier)
    body = envelope()
    headers = sign(body, secret, timestamp=NOW)
    signature = headers[SIGNATURE_HEADER].removeprefix("sha256=")
    cases = [(OTHER, headers), (secret, {**headers, TIMESTAMP_HEADER: "1"})]
    for used, hdr in cases:
        with pytest.raises(WebhookError) as info:
            Verifier(used).verify(body, hdr, now=NOW)
        assert secret not in str(info.value) and signature not in str(info.value)


def test_fuzzed_input_only_ever_raises_webhook_error():
    """Random bodies, header values and containers: the only exception is WebhookError."""
    rng = random.Random(1234)
    verifier = Verifier([SECRET, OTHER], replay_store=MemoryReplayStore())
    good = envelope()
    pieces = [
        "sha256=",
        "SHA256=",
        "é",
        "\x00",
        "ff",
        "0" * 64,
        "g",
        " ",
        "\ud800",
        "9" * 30,
        "-1",
        "",
    ]
    containers = [
        lambda h: h,
        lambda h: list(h.items()),
        lambda h: [(k.encode(), v.encode("utf-8", "surrogatepass")) for k, v in h.items()],
        lambda h: None,
        lambda h: 42,
        lambda h: [("only-one",)],
        lambda h: {1: 2, None: b"x"},
    ]
    bodies = [good, b"", b"\x80\x81", good[:-1], b"{}", b"null", b"1e999999", b'{"id": 1}']
    for _ in range(3000):
        body = rng.choice(bodies) if rng.random() < 0.7 else rng.randbytes(rng.randint(0, 300))
        headers = sign(good, rng.choice([SECRET, OTHER, "x" * 9]), timestamp=NOW)
        for name in (SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER):
            if rng.random() < 0.5:
                headers[name] = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        try:
            verifier.verify(body, rng.choice(containers)(headers), now=NOW)
        except WebhookError as exc:
            assert exc.reason in WebhookError.REASONS


def test_verify_uses_the_clock_when_now_is_not_given():
    from freezegun import freeze_time

    body = envelope()
    with freeze_time(datetime.fromtimestamp(NOW, UTC)):
        headers = sign(body, SECRET)
        assert headers[TIMESTAMP_HEADER] == str(NOW)
        assert verify(body, headers, SECRET).id
    with freeze_time(datetime.fromtimestamp(NOW + 301, UTC)):
        with pytest.raises(WebhookError, match="stale"):
            verify(body, headers, SECRET)


def test_default_max_age_is_the_policy_replay_window():
    from vsms_guard.retention import load_policy

    assert Verifier(SECRET).max_age == load_policy().replay_ids


def test_an_id_first_seen_early_cannot_be_replayed_when_it_expires():
    """Worst case: first delivery ``tolerance`` before created_at; its id expires exactly when
    the event turns ``max_age`` old, and at that instant the event must already be refused."""
    verifier = Verifier(SECRET, max_age=3600, tolerance=300, replay_store=MemoryReplayStore())
    body = envelope(created=NOW)
    first = NOW - 300
    verifier.verify(body, sign(body, SECRET, timestamp=first), now=first)
    for later in (NOW + 3600, NOW + 3601):  # the id is gone from the store from NOW + 3600 on
        with pytest.raises(WebhookError) as info:
            verifier.verify(body, sign(body, SECRET, timestamp=later), now=later)
        assert info.value.reason == "stale"
    with pytest.raises(WebhookError, match="replayed"):  # one second earlier: still remembered
        verifier.verify(body, sign(body, SECRET, timestamp=NOW + 3599), now=NOW + 3599)


@pytest.mark.parametrize("now", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_now_is_refused_not_let_through_every_window(now):
    body = envelope()
    assert reason_of(body, sign(body, SECRET, timestamp=NOW), now=now) == "bad_config"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secrets": 42},
        {"secrets": None},
        {"secrets": SECRET, "tolerance": "300"},
        {"secrets": SECRET, "tolerance": float("nan")},
        {"secrets": SECRET, "max_age": True},
        {"secrets": SECRET, "max_age": 0},
    ],
)
def test_odd_configuration_types_are_bad_config_not_type_errors(kwargs):
    with pytest.raises(WebhookError) as info:
        Verifier(kwargs.pop("secrets"), **kwargs)
    assert info.value.reason == "bad_config"


def test_every_secret_is_compared_whichever_matches(monkeypatch):
    """No early exit: the work (and so the timing) is the same whether the first secret, the
    last or none matches, so an attacker learns neither which secret is live nor how close."""
    import hmac

    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a, b):
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    secrets = [SECRET, OTHER, "whsec_" + "Qr4" * 10]
    verifier = Verifier(secrets)
    body = envelope()
    for used in (SECRET, secrets[-1], "whsec_unknown_secret"):
        calls.clear()
        try:
            verifier.check_signature(body, sign(body, used, timestamp=NOW), now=NOW)
        except WebhookError as exc:
            assert exc.reason == "mismatch"
        assert len(calls) == len(secrets)


@pytest.mark.parametrize("timestamp", ["soon", float("nan"), float("inf"), object()])
def test_sign_refuses_a_timestamp_that_is_not_unix_seconds(timestamp):
    with pytest.raises(WebhookError) as info:
        sign(envelope(), SECRET, timestamp=timestamp)
    assert info.value.reason == "bad_config"
