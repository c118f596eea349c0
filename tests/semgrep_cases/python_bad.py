# Positive examples: every marked line must be reported by the rule named after "ruleid:".
import hashlib
import hmac
import json
import logging

import httpx
import requests
from flask import request
from myapp.security import verify, verify_signature

log = logging.getLogger(__name__)


def key_in_url(api_key: str) -> None:
    # ruleid: vsms-key-in-url-python
    requests.get("https://virtualsms.io/api/v1/customer/balance", params={"api_key": api_key})
    # ruleid: vsms-key-in-url-python
    httpx.get(f"https://virtualsms.io/api/v1/customer/balance?apiKey={api_key}")
    # ruleid: vsms-key-in-url-python
    httpx.get("wss://virtualsms.io/ws/orders?order_id=1&api_key=" + api_key)


def logging_headers(client: httpx.Client) -> None:
    # ruleid: vsms-headers-logged-python
    log.debug("request headers: %s", request.headers)
    # ruleid: vsms-headers-logged-python
    logging.info(f"calling upstream with {request.headers}")
    # ruleid: vsms-headers-logged-python
    log.info("client config %r", client.config)
    # ruleid: vsms-print-headers-python
    print(request.headers)


def compare(secret: bytes, body: bytes) -> bool:
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    signature = request.headers["X-VirtualSMS-Signature"]
    # ruleid: vsms-signature-equality-python
    if signature == expected:
        return True
    # ruleid: vsms-signature-equality-python
    return hmac.new(secret, body, hashlib.sha256).hexdigest() != request.headers["X-Sig"]


def flask_webhook(secret: bytes):
    # ruleid: vsms-webhook-json-before-verify-python
    event = request.get_json()
    if not verify_signature(json.dumps(event).encode(), request.headers, secret):
        return "bad", 400
    return "ok"


async def fastapi_webhook(req, secret: bytes):
    # ruleid: vsms-webhook-json-before-verify-python
    payload = await req.json()
    verify(json.dumps(payload).encode(), req.headers, secret)
    return payload


def open_relay():
    upstream = request.args.get("baseUrl", "https://virtualsms.io")
    # ruleid: vsms-base-url-from-request-python
    return httpx.Client(base_url=upstream)


def readme_verifier_after_json(verifier):
    """The project's own API (Verifier.verify) called as a method, after parsing."""
    # ruleid: vsms-webhook-json-before-verify-python
    payload = json.loads(request.data)
    event = verifier.verify(json.dumps(payload).encode(), request.headers)
    return event


def sync_json_before_method_verify(req, verifier):
    # ruleid: vsms-webhook-json-before-verify-python
    payload = req.json()
    if not verifier.verify(json.dumps(payload).encode(), req.headers):
        return "bad", 400
    return payload


def relay_in_url():
    base = request.args["baseUrl"]
    # ruleid: vsms-base-url-from-request-python
    httpx.get(f"{base}/api/v1/customer/balance")
    # ruleid: vsms-base-url-from-request-python
    return requests.post(request.args.get("baseUrl") + "/api/v1/customer/purchase")
