"""Redaction speed: logging overhead per record, and ``vsms-guard redact`` against GNU sed.

``python -m bench redact``. Figures are best-of-rounds wall times measured side by side in one
run, so the ratios hold on a busy machine even when the absolute numbers move.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vsms_guard import keys
from vsms_guard.redact import RedactingFilter, Redactor, install, uninstall

OUT = Path(__file__).parent / "out"
LOG_MB = int(os.environ.get("BENCH_REDACT_MB", "200"))
RECORDS = 20_000
ROUNDS = 7
# What GNU sed must do to match the redactor's rules: keys, secret query/field names, quoted
# JSON/repr fields and name=value pairs (SMS fields included, auth schemes taken with their
# token), header lines, URL userinfo, the "message" of SMS push lines.
_SED_NAMES = (
    r"([[:alnum:]_.-]*(api[-_]?key|token|secret|password|passwd)|key"
    r"|(proxy[-_]?)?authorization|(set[-_]?)?cookie)"
)
SED_SCRIPT = "\n".join(
    [
        r"s/vsms_[A-Za-z0-9_-]{20,}/vsms_…[redacted]/g",
        rf"s/(^|[^[:alnum:]_.-])(({_SED_NAMES}|full_text|sms_text|sms_code|code)=)"
        r"""("[^"]*"|'[^']*'|(bearer|basic|token|digest|apikey)[[:space:]]+[^[:space:]&;,#"'<>(){}]+"""
        r"""|[^[:space:]&;,#"'<>()]*)/\1\2[redacted]/Ig""",
        rf"""s/(b?["']({_SED_NAMES}|full_text|sms_text|sms_code|code|content)["']"""
        r"""[[:space:]]*[:,=][[:space:]]*b?["'])[^"']*/\1[redacted]/Ig""",
        r"s/(^|[^[:alnum:]_-])((x-)?api-key|(proxy-)?authorization|(set-)?cookie)"
        r"""[[:space:]]*:[[:space:]]*[^"'\r]*/\1\2: [redacted]/Ig""",
        r"s#(://[^[:space:]/:@]+):[^[:space:]/@]+@#\1:[redacted]@#g",
        r"""/type"[[:space:]]*:[[:space:]]*"sms(_received)?"/I"""
        r"""s/("message"[[:space:]]*:[[:space:]]*")[^"]*/\1[redacted]/Ig""",
        "",
    ]
)


def _key(rng: random.Random) -> str:
    while True:
        candidate = keys.PREFIX + "".join(
            rng.choice(string.ascii_letters + string.digits) for _ in range(32)
        )
        if keys.is_key(candidate):
            return candidate


def _best(run: Callable[[], None], rounds: int = ROUNDS) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


# --- logging overhead ----------------------------------------------------------------------------
def _logger(name: str, path: Path, with_filter: bool) -> logging.Logger:
    log = logging.getLogger(f"bench.redact.{name}")
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    if with_filter:
        handler.addFilter(RedactingFilter(Redactor()))
    log.addHandler(handler)
    return log


def bench_logging(tmp: Path) -> None:
    key = _key(random.Random(1))
    shapes = {
        "clean": ("GET %s %d %.1fms", ("/api/v1/customer/orders", 200, 12.5)),
        # Test data for redaction, not a real call: the key in a URL is the point here.
        "with key": (
            "HTTP Request: GET %s %d",
            (f"https://virtualsms.io/x?api_key={key}", 200),  # nosemgrep: vsms-key-in-url-python
        ),
    }
    print(f"logging: µs per record, best of {ROUNDS} rounds of {RECORDS} records, FileHandler")
    for shape, (msg, args) in shapes.items():
        plain = _logger(f"{shape}-plain", tmp / "plain.log", with_filter=False)
        filtered = _logger(f"{shape}-filter", tmp / "filtered.log", with_filter=True)
        hooked = _logger(f"{shape}-install", tmp / "installed.log", with_filter=False)

        def emit(log: logging.Logger, msg: str = msg, args: tuple = args) -> Callable[[], None]:
            return lambda: [log.info(msg, *args) for _ in range(RECORDS)]

        best = dict.fromkeys(["no redaction", "RedactingFilter", "install()"], float("inf"))
        for _ in range(ROUNDS):  # interleaved, so load changes hit every variant alike
            best["no redaction"] = min(best["no redaction"], _best(emit(plain), 1))
            best["RedactingFilter"] = min(best["RedactingFilter"], _best(emit(filtered), 1))
            install(Redactor())
            try:
                best["install()"] = min(best["install()"], _best(emit(hooked), 1))
            finally:
                uninstall()
        base = best["no redaction"]
        for name, seconds in best.items():
            per = seconds / RECORDS * 1e6
            print(f"  {shape:9} {name:16} {per:7.2f} µs  ratio {seconds / base:5.2f}x")
        for log in (plain, filtered, hooked):
            for handler in log.handlers:
                handler.close()
    print("  targets: clean <= 1.30x, with key <= 3.00x")


# --- stream filter vs sed ------------------------------------------------------------------------
def _make_log(path: Path, megabytes: int) -> None:
    rng = random.Random(7)
    secrets = [_key(rng) for _ in range(20)]
    clean = [
        "2026-11-27T14:00:{s:02d}.123Z INFO app.server request_id={r} GET /api/v1/customer/"
        "orders/{r} 200 {ms}ms ua=Mozilla/5.0\n",
        "2026-11-27T14:00:{s:02d}.456Z DEBUG worker.queue job={r} state=done duration={ms}ms "
        "retries=0 host=web-{ms}\n",
        '127.0.0.1:{ms} - "GET /health HTTP/1.1" 200 OK\n',
    ]
    dirty = [
        "2026-11-27T14:00:{s:02d}.789Z INFO httpx HTTP Request: GET https://virtualsms.io/ws/"
        'orders?order_id={r}&api_key={k} "HTTP/1.1 200 OK"\n',
        "2026-11-27T14:00:{s:02d}.000Z DEBUG websockets.client > x-api-key: {k}\n",
        "2026-11-27T14:00:{s:02d}.000Z ERROR app failed with key {k} for order {r}\n",
    ]
    target = megabytes * 1_000_000
    written = 0
    with path.open("w") as fh:
        while written < target:
            pool = dirty if rng.random() < 0.01 else clean
            fields = {"s": rng.randrange(60), "r": rng.randrange(10**9), "ms": rng.randrange(1000)}
            line = rng.choice(pool).format(k=rng.choice(secrets), **fields)
            fh.write(line)
            written += len(line)


def _run_to_null(command: list[str], env: dict[str, str] | None = None) -> Callable[[], None]:
    def run() -> None:
        with open(os.devnull, "wb") as sink:
            subprocess.run(command, stdout=sink, check=True, env=env)

    return run


def _masked_lines(command: list[str], out: Path) -> int:
    with out.open("wb") as sink:
        subprocess.run(command, stdout=sink, check=True)
    with out.open("rb") as fh:
        return sum(1 for line in fh if b"redacted" in line)


def bench_stream(tmp: Path) -> None:
    OUT.mkdir(exist_ok=True)
    log = OUT / f"redact-{LOG_MB}mb.log"
    if not log.exists():
        _make_log(log, LOG_MB)
    sed = shutil.which("sed")
    script = tmp / "equivalent.sed"
    script.write_text(SED_SCRIPT)
    ours = [str(Path(sys.executable).with_name("vsms-guard")), "redact", str(log)]
    fallback = [
        sys.executable,
        "-c",
        "import sys; sys.modules['re2'] = None; from vsms_guard.cli import main; "
        "sys.exit(main(sys.argv[1:]))",
        "redact",
        str(log),
    ]
    sed_cmd = [sed, "-E", "-f", str(script), str(log)] if sed else None
    print(
        f"stream: {log.stat().st_size / 1e6:.0f} MB log, 1 % dirty lines, best of 3, to /dev/null"
    )
    if sed_cmd:
        ours_lines = _masked_lines(ours, tmp / "ours.out")
        sed_lines = _masked_lines(sed_cmd, tmp / "sed.out")
        print(f"  lines masked: vsms-guard {ours_lines}, sed {sed_lines}")
    rows = [("vsms-guard redact", _best(_run_to_null(ours), 3))]
    if sed_cmd:
        rows.append(("GNU sed -E (locale)", _best(_run_to_null(sed_cmd), 3)))
        c_env = {**os.environ, "LC_ALL": "C"}
        rows.append(("GNU sed -E (LC_ALL=C)", _best(_run_to_null(sed_cmd, c_env), 3)))
    rows.append(("vsms-guard, no google-re2", _best(_run_to_null(fallback), 1)))
    base = rows[0][1]
    size_mb = log.stat().st_size / 1e6
    for name, seconds in rows:
        ratio = seconds / base
        print(
            f"  {name:26} {seconds:6.2f} s  {size_mb / seconds:6.0f} MB/s  {ratio:5.2f}x our time"
        )
    if not sed_cmd:
        print("  GNU sed not found: no peer to compare with")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bench_logging(Path(tmp))
        bench_stream(Path(tmp))


if __name__ == "__main__":
    main()
