"""``vsms-guard redact``: the real console script in a subprocess, plus the stream core it wraps."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import fake_key
from vsms_guard.redact import Redactor, masked
from vsms_guard.redact import stream as stream_module
from vsms_guard.redact.stream import redact_stream

BIN = str(Path(sys.executable).with_name("vsms-guard"))
KEY = fake_key("cli")


def run(
    *args: str, data: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUALSMS_")}
    full_env.update(env or {})
    return subprocess.run(
        [BIN, "redact", *args], input=data, capture_output=True, env=full_env, timeout=300
    )


def test_stdin_to_stdout_masks_and_keeps_everything_else() -> None:
    data = (
        f"GET /mcp?order_id=7&apiKey={KEY} 200\n"
        f"> x-api-key: {KEY}\n"
        "plain line\n"
        '{"code": "482913", "status": "ok"}\n'
        f"no newline at the end {KEY}"
    ).encode()
    proc = run(data=data)
    assert proc.returncode == 0, proc.stderr
    shown = masked(KEY).encode()
    assert proc.stdout == (
        b"GET /mcp?order_id=7&apiKey=" + shown + b" 200\n"
        b"> x-api-key: " + shown + b"\n"
        b"plain line\n"
        b'{"code": "[redacted:sms]", "status": "ok"}\n'
        b"no newline at the end " + shown
    )
    assert proc.stderr == b""


def test_files_are_streamed_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_bytes(f"one {KEY}\n".encode())
    second.write_bytes(b"two\n")
    proc = run(str(first), "-", str(second), data=b"from stdin\n")
    assert proc.returncode == 0
    assert proc.stdout == b"one " + masked(KEY).encode() + b"\nfrom stdin\ntwo\n"


def test_non_utf8_lines_keep_their_bytes() -> None:
    raw = b"\xff\xfe\x00latin-1 caf\xe9 " + KEY.encode() + b" \x80\x81\r\n\xc3\x28 broken utf-8\n"
    proc = run(data=raw)
    assert proc.returncode == 0
    assert proc.stdout == raw.replace(KEY.encode(), masked(KEY).encode())


def test_clean_input_comes_out_identical() -> None:
    raw = bytes(range(256)) * 64 + b"\nvsms_key_rotation_work_frequency=3\n"
    proc = run(data=raw)
    assert proc.returncode == 0
    assert proc.stdout == raw


def test_environment_key_and_webhook_secret_of_any_shape() -> None:
    env = {"VIRTUALSMS_API_KEY": "odd-env-key-1", "VIRTUALSMS_WEBHOOK_SECRET": "whsec_a,whsec_bb"}
    proc = run(data=b"k=odd-env-key-1 w1=whsec_a w2=whsec_bb\n", env=env)
    assert proc.returncode == 0
    out = proc.stdout.decode()
    assert "odd-env-key-1" not in out and "whsec_a " not in out and "whsec_bb" not in out
    assert out.startswith("k=…[redacted:")


def test_secret_env_and_secret_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.txt"
    secrets.write_text("# comment\nfile-secret-2\n")
    proc = run(
        "--secret-env",
        "MY_TOKEN",
        "--secret-file",
        str(secrets),
        data=b"a=env-secret-1 b=file-secret-2 c=# comment\n",
        env={"MY_TOKEN": "env-secret-1"},
    )
    assert proc.returncode == 0
    assert b"env-secret-1" not in proc.stdout and b"file-secret-2" not in proc.stdout
    assert b"c=# comment" in proc.stdout


def test_keep_sms_switch() -> None:
    line = b'{"sms_text": "Your code is 482913"}\n'
    assert b"482913" not in run(data=line).stdout
    assert run("--keep-sms", data=line).stdout == line


def test_check_mode_reports_without_writing() -> None:
    dirty = run("--check", data=f"x {KEY}\n".encode())
    clean = run("--check", data=b"nothing here\n")
    assert (dirty.returncode, dirty.stdout) == (1, b"")
    assert (clean.returncode, clean.stdout) == (0, b"")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/file.log"], "/no/such/file.log: cannot read: No such file or directory"),
        (["."], ".: cannot read: Is a directory"),
        (["--secret-env", "UNSET_FOR_SURE"], "environment variable UNSET_FOR_SURE is not set"),
        (["--secret-file", "/no/such/secrets"], "/no/such/secrets: cannot read secret file"),
        (["--bogus"], "unrecognized arguments: --bogus (see 'vsms-guard redact --help')"),
        (["--secret-env"], "argument --secret-env: expected one argument"),
        (["--secret-env", "SHORT"], "environment variable SHORT: a secret shorter than 4"),
        (["--secret-file", "/dev/null"], "/dev/null: no secret in file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = run(*args, data=f"{KEY}\n".encode(), env={"SHORT": "ab,cdef"})
    assert proc.returncode == 2
    assert proc.stdout == b""  # nothing half-written
    err = proc.stderr.decode()
    assert message in err
    assert len(err.splitlines()) == 1, err  # no usage block
    assert "Traceback" not in err and KEY not in err


def test_a_secret_too_short_to_mask_is_an_error_not_a_silent_gap() -> None:
    """Secrets under 4 characters are not masked (they would hit ordinary words): the CLI says
    so instead of passing them through."""
    proc = run(data=b"key abc here\n", env={"VIRTUALSMS_API_KEY": "abc"})
    assert proc.returncode == 2 and proc.stdout == b""
    assert b"VIRTUALSMS_API_KEY: a secret shorter than 4 characters" in proc.stderr
    assert b"abc" not in proc.stderr


def test_secret_file_lines_are_exact_values_commas_included(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.txt"
    secrets.write_text("pa,ss-word-1\n")
    proc = run("--secret-file", str(secrets), data=b"x=pa,ss-word-1 y=ss-word-1\n")
    assert proc.returncode == 0, proc.stderr
    assert b"pa,ss-word-1" not in proc.stdout
    assert b"y=ss-word-1" in proc.stdout  # a part of it is not a secret of its own


def test_a_bad_file_after_a_good_one_fails_before_any_output(tmp_path: Path) -> None:
    good = tmp_path / "good.log"
    good.write_text("fine\n")
    proc = run(str(good), str(tmp_path / "missing.log"))
    assert proc.returncode == 2 and proc.stdout == b""


@pytest.mark.slow
def test_constant_memory_on_a_large_stream_and_a_huge_line(tmp_path: Path) -> None:
    """96 MiB of log and a 24 MiB line without newline go through in well under 96 MiB RSS."""
    block = (b"2026-11-27T14:00:00Z INFO app GET /api/v1/customer/orders 200 12ms\n" * 99) + (
        f"2026-11-27T14:00:00Z DEBUG httpx GET /x?api_key={KEY}\n".encode()
    )
    huge_line = b"x" * (24 << 20) + b" " + KEY.encode() + b" tail"
    out_file = tmp_path / "out.log"
    probe = (
        "import resource, subprocess, sys\n"
        f"with open({str(out_file)!r}, 'wb') as out:\n"
        f"    code = subprocess.run([{BIN!r}, 'redact'], stdout=out).returncode\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(code, peak)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", probe], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None
    copies = (96 << 20) // len(block)
    for _ in range(copies):
        proc.stdin.write(block)
    proc.stdin.write(huge_line)
    proc.stdin.close()
    assert proc.stdout is not None and proc.wait(timeout=600) == 0
    code, peak_kib = map(int, proc.stdout.read().split())
    assert code == 0
    assert peak_kib < 96 * 1024, f"peak RSS {peak_kib} KiB: the filter is not streaming"
    size = out_file.stat().st_size
    shown = masked(KEY).encode()
    assert size == copies * (len(block) - len(KEY) + len(shown)) + len(huge_line) - len(KEY) + len(
        shown
    )
    with out_file.open("rb") as fh:
        fh.seek(-len(shown) - 5, os.SEEK_END)
        assert fh.read() == shown + b" tail"


def test_keys_split_across_reads_are_still_masked() -> None:
    """The stream cuts at newlines, so a tiny read size cannot split a key."""
    data = f"first {KEY}\nsecond ?token={KEY}&x=1\n".encode()
    out = io.BytesIO()
    assert redact_stream(io.BytesIO(data), out, Redactor(), chunk_size=7) is True
    assert KEY.encode() not in out.getvalue()
    assert out.getvalue().count(masked(KEY).encode()) == 2


def test_overlong_line_is_cut_at_a_separator_not_inside_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream_module, "MAX_LINE", 64)
    data = (b"a" * 50 + b" " + KEY.encode() + b" ") * 20  # no newline at all
    out = io.BytesIO()
    redact_stream(io.BytesIO(data), out, Redactor(), chunk_size=16)
    assert out.getvalue() == data.replace(KEY.encode(), masked(KEY).encode())


@pytest.mark.parametrize("filler", [b"a", b"a=", b"x y"], ids=["token", "equals", "spaces"])
def test_a_key_at_every_offset_around_the_cut_of_an_overlong_line_is_masked(
    filler: bytes,
) -> None:
    """An overlong line is cut without splitting a key wherever the key sits around the cut
    (issue: ``'a' * (1 MiB - 10) + KEY`` came out unmasked)."""
    key = KEY.encode()
    for offset in range(-len(key) - 8, 9):
        head = (filler * (stream_module.MAX_LINE // len(filler) + 1))[
            : stream_module.MAX_LINE + offset
        ]
        data = head + key + b"\n"
        out = io.BytesIO()
        redact_stream(io.BytesIO(data), out, Redactor())
        assert key not in out.getvalue(), offset
        assert out.getvalue() == head + masked(KEY).encode() + b"\n", offset


def test_webhook_secrets_are_masked_by_shape_without_configuration() -> None:
    from tests.test_redact_core import webhook_secret

    secret = webhook_secret(3)
    proc = run(data=f"POST /hook secret loaded: {secret}\n".encode())
    assert proc.returncode == 0
    assert proc.stdout == f"POST /hook secret loaded: {masked(secret)}\n".encode()


def test_a_webhook_secret_glued_in_an_overlong_token_run_is_not_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.test_redact_core import webhook_secret

    monkeypatch.setattr(stream_module, "OVERLAP", 64)
    secret = webhook_secret(4).encode()
    for offset in range(-len(secret) - 4, 5):
        head = b"a" * (stream_module.MAX_LINE - 64 + offset)
        data = head + secret + b"b" * 64 + b"\n"  # the secret runs across the held-back point
        out = io.BytesIO()
        redact_stream(io.BytesIO(data), out, Redactor())
        assert secret not in out.getvalue(), offset
