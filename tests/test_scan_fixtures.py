"""The fixture tree every scanner test uses, built at run time (no key literal in the repo), and
the scanner's core promise on it: every planted leak found, no placeholder or name reported."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from scanners import tree
from tests.fakes import fake_key
from vsms_guard import keys

# FACTS §5 and the issue: documentation placeholders and identifiers; none is a key.
NOT_KEYS = [
    *sorted(keys.PLACEHOLDERS),
    *sorted(keys.IDENTIFIERS),
    "vsms_your_virtualsms_api_key",
    "vsms_YOUR_API_KEY_GOES_HERE",
    "vsms_<your-api-key>",
    "vsms_<YOUR_KEY_FROM_THE_DASHBOARD>",
    "${vsms_api_key_from_environment}",
    "${VSMS_API_KEY}",
    "vsms_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "vsms_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "vsms_••••••••••••••••••••••••",
    "vsms_…",
    "vsms_key_rotation_work_frequency",
    "vsms_message_query_result_handler",
    "VSMS_MESSAGE_QUERY_RESULT_HANDLER",
    "vsms_messageQueryResultHandler",
    "vsms_api-key-for-the-staging-environment",
    "vsms_test_key_1234567890",
    "vsms_example_key_AbCdEf0123456789",
    "vsms_replace_me_with_your_real_key",
    "vsms_dummyKey0000000000000000000",
    "vsms_0000000000000000000000000000",
    "vsms_abc123abc123abc123abc123",
    "vsms_abcdefghijklmnopqrstuvwxyz",
    "vsms_1234567890abcdefghij",
    "vsms_REDACTED_REDACTED_REDACTED",
    "vsms_sample0123456789ABCDEFGH",
    "vsms_changeme_changeme_changeme",
    "vsms_MyVirtualSmsKeyForProd2024",
    "vsms_aBcDeFgHiJkLmNoPqRsTuVwXyZ",
    "vsms_1a2b3c4d5e6f7g8h9i0j",
    "vsms_demo_AbCdEf0123456789XyZ",
    # typed fakes around a random tail, built at run time (no key-shaped literal in the repo)
    "vsms_fake" + fake_key("fake-marker")[len(keys.PREFIX) :],
    "vsms_demo_" + fake_key("demo-marker")[len(keys.PREFIX) :],
]


def _notebook(source: str) -> str:
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "source": [source]}
    doc = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(doc, indent=1)


def build_leaky_tree(root: Path) -> dict[str, str]:
    """Write the fixture tree under ``root``; returns {relative path: planted key}.

    Also writes decoys that must not be reported: placeholders and identifiers in every file
    type, an allowlisted line, a binary file and a git-ignored file holding keys.
    """
    planted: dict[str, str] = {}

    def leak(rel: str, make, encoding: str | None = "utf-8") -> None:  # noqa: ANN001
        key = fake_key(f"tree-{rel}")
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        body = make(key)
        if isinstance(body, str):
            path.write_bytes(body.encode(encoding))
        else:
            path.write_bytes(body)
        planted[rel] = key

    leak("src/settings.py", lambda k: f'import os\n\nAPI_KEY = "{k}"\nDEBUG = False\n')
    leak(".env", lambda k: f"VIRTUALSMS_BASE_URL=https://virtualsms.io\nVIRTUALSMS_API_KEY={k}\n")
    leak("config/app.json", lambda k: json.dumps({"virtualsms": {"api_key": k}}, indent=2))
    leak("config/app.yaml", lambda k: f"virtualsms:\n  api_key: '{k}'\n  timeout: 30\n")
    leak("config/app.toml", lambda k: f'[virtualsms]\napi_key = "{k}"\n')
    leak("scripts/balance.sh", lambda k: f'curl "https://virtualsms.io/b?api_key={k}&x=1"\n')
    leak("requests/balance.http", lambda k: f"GET /api/v1/customer/balance\nX-API-Key: {k}\n")
    leak("logs/event.json", lambda k: json.dumps({"body": json.dumps({"headers": {"k": k}})}))
    leak("notebooks/try.ipynb", lambda k: _notebook(f'client = Client(api_key="{k}")\n'))
    leak(
        "static/app.min.js",
        lambda k: "!function(){var a=1;" * 200 + f'fetch(u,{{headers:{{"x-api-key":"{k}"}}}})}}()',
    )
    leak(
        "windows/settings.ini",
        lambda k: f"[virtualsms]\r\napi_key={k}\r\n",
        encoding="utf-16",
    )
    leak(
        "k8s/secret.yaml",
        lambda k: (
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: virtualsms\ndata:\n"
            f"  VIRTUALSMS_API_KEY: {base64.b64encode(k.encode()).decode()}\n"
        ),
    )

    decoys = "\n".join(f"key = {value!r}" for value in NOT_KEYS) + "\n"
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs/setup.md").write_text(
        "# Setup\n\n" + "\n".join(f"    export VIRTUALSMS_API_KEY={v}" for v in NOT_KEYS) + "\n"
    )
    (root / "src/names.py").write_text(decoys)
    (root / "config/placeholders.json").write_text(json.dumps({"keys": NOT_KEYS}))
    (root / "k8s/placeholder-secret.yaml").write_text(
        "data:\n"
        + "".join(
            f"  k{i}: {base64.b64encode(v.encode()).decode()}\n" for i, v in enumerate(NOT_KEYS)
        )
    )
    (root / "src/allowed.py").write_text(
        f'TEST_KEY = "{fake_key("allowed")}"  # pragma: allowlist secret\n'
    )
    (root / "assets").mkdir(exist_ok=True)
    (root / "assets/logo.png").write_bytes(
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + fake_key("binary").encode() + b"\0" * 64
    )
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "build").mkdir(exist_ok=True)
    (root / "build/bundle.js").write_text(f'var k="{fake_key("ignored-dir")}";\n')
    (root / "debug.log").write_text(f"key={fake_key('ignored-file')}\n")
    return planted


def test_every_planted_leak_is_found_and_no_decoy(tmp_path: Path) -> None:
    planted = build_leaky_tree(tmp_path)
    leaks, problems = tree.collect([tmp_path], tmp_path)
    assert problems == []
    found = {(Path(leak.path).relative_to(tmp_path).as_posix(), leak.hit.key) for leak in leaks}
    assert found == set(planted.items())


def test_encodings_are_labelled(tmp_path: Path) -> None:
    build_leaky_tree(tmp_path)
    leaks, _ = tree.collect([tmp_path], tmp_path)
    by_path = {Path(leak.path).relative_to(tmp_path).as_posix(): leak.hit for leak in leaks}
    assert by_path["windows/settings.ini"].encoding == "utf-16"
    assert by_path["k8s/secret.yaml"].encoding == "base64"
    assert by_path["src/settings.py"].encoding == "text"
    assert (by_path["src/settings.py"].line, by_path["src/settings.py"].column) == (3, 12)
    assert by_path["windows/settings.ini"].line == 2
    assert by_path["k8s/secret.yaml"].line == 6


def test_pragmas_allow_their_own_line_or_the_next_one_only(tmp_path: Path) -> None:
    same, below, after = fake_key("pragma-same"), fake_key("pragma-below"), fake_key("pragma-after")
    (tmp_path / "a.py").write_text(
        f"A = '{same}'  # pragma: allowlist secret\n"
        "# pragma: allowlist nextline secret\n"
        f"B = '{below}'\n"
        f"C = '{after}'\n"
    )
    leaks, _ = tree.collect([tmp_path], tmp_path)
    assert [(leak.hit.key, leak.hit.line) for leak in leaks] == [(after, 4)]
