"""keys.py, the one definition of a key: precision on every placeholder/identifier shape,
recall on random keys of many shapes, masking that never shows a key whole."""

from __future__ import annotations

import base64
import random
import string

import pytest

from tests.fakes import fake_key
from tests.test_scan_fixtures import NOT_KEYS
from vsms_guard import keys


def random_token(seed: int, length: int, alphabet: str) -> str:
    rng = random.Random(f"keys-test-{seed}-{length}-{alphabet}")
    return "".join(rng.choice(alphabet) for _ in range(length))


ALPHABETS = {
    "base62": string.ascii_letters + string.digits,
    "base64url": string.ascii_letters + string.digits + "-_",
    "hex-lower": "0123456789abcdef",
    "hex-upper": "0123456789ABCDEF",
    "lower+digits": string.ascii_lowercase + string.digits,
    "upper+digits": string.ascii_uppercase + string.digits,
}
# Minimum share of random tokens recognised, by token length. Short lowercase+digits tokens
# can, by chance, read like a numbered name; from 32 characters on nearly none do.
MIN_RECALL = {20: 0.85, 24: 0.93, 32: 0.99, 40: 0.99, 48: 0.995, 64: 0.995}
SAMPLES = 400


@pytest.mark.parametrize("value", NOT_KEYS)
def test_placeholders_and_identifiers_are_not_keys(value: str) -> None:
    assert not keys.is_key(value)
    assert list(keys.find_keys(f"api_key = '{value}'")) == []
    assert list(keys.find_keys_bytes(f"X-API-Key: {value}\n".encode())) == []
    assert not keys.contains_key(value)


@pytest.mark.parametrize("alphabet", sorted(ALPHABETS))
@pytest.mark.parametrize("length", sorted(MIN_RECALL))
def test_random_keys_of_every_shape_are_keys(alphabet: str, length: int) -> None:
    tokens = [random_token(seed, length, ALPHABETS[alphabet]) for seed in range(SAMPLES)]
    found = sum(keys.is_key(keys.PREFIX + token) for token in tokens)
    assert found / SAMPLES >= MIN_RECALL[length]


def test_base62_keys_are_almost_always_keys() -> None:
    tokens = [random_token(seed, 32, ALPHABETS["base62"]) for seed in range(SAMPLES)]
    assert all(keys.is_key(keys.PREFIX + token) for token in tokens)


def test_keys_with_segment_separators_are_keys() -> None:
    for seed in range(20):
        token = "_".join(random_token(seed + i, 8, ALPHABETS["base62"]) for i in range(4))
        assert keys.is_key(keys.PREFIX + "live_" + token)


def test_prefix_is_case_sensitive_and_token_needs_20_chars() -> None:
    key = fake_key("case")
    assert keys.is_key(key)
    assert not keys.is_key("VSMS_" + key[5:])
    assert not keys.is_key("Vsms_" + key[5:])
    assert not keys.is_key(key[:24])  # 19-char token
    assert keys.is_key(keys.PREFIX + random_token(1, 20, ALPHABETS["base62"]))


def test_find_keys_in_contexts_without_boundaries() -> None:
    key = fake_key("contexts")
    contexts = [
        f"https://virtualsms.io/x?api_key={key}&y=1",
        f'"{{\\"api_key\\":\\"{key}\\"}}"',
        f"\\n{key}\\n",
        f"X-API-Key:{key}",
        f"export KEY={key};echo",
    ]
    for text in contexts:
        assert [m.group() for m in keys.find_keys(text)] == [key]
        assert [m.group() for m in keys.find_keys_bytes(text.encode())] == [key.encode()]


def test_base64_needles_cover_every_alignment() -> None:
    key = fake_key("b64")
    for pad in range(6):
        raw = b"x" * pad + key.encode()
        for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            assert any(needle in encoded for needle in keys.BASE64_NEEDLES), pad
    assert not any(n in base64.b64encode(b"vsmx_" * 10) for n in keys.BASE64_NEEDLES)


def test_mask_and_fingerprint_never_show_the_key() -> None:
    key = fake_key("mask")
    shown = keys.mask(key)
    assert shown.startswith(keys.PREFIX) and shown.endswith(f"({len(key)})")
    assert key[8:] not in shown
    fp = keys.fingerprint(key)
    assert len(fp) == 12 and fp == keys.fingerprint(key.encode())
    assert fp != keys.fingerprint(fake_key("other"))
    assert key[5:17] not in fp


def test_entropy_is_bits_per_character() -> None:
    assert keys.shannon_entropy("") == 0.0
    assert keys.shannon_entropy("aaaa") == 0.0
    assert keys.shannon_entropy("abcd") == pytest.approx(2.0)
