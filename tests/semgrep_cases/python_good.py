# Negative examples: nothing in this file may be reported.
import hashlib
import hmac
import json
import logging
import os

import httpx
from flask import request

from vsms_guard.webhooks import WebhookError, verify

log = logging.getLogger(__name__)
BASE_URL = os.environ.get("VIRTUALSMS_BASE_URL", "https://virtualsms.io")
PLACEHOLDER = "vsms_your_api_key_here_replace_me_please"


def key_in_header(api_key: str) -> httpx.Response:
    return httpx.get(f"{BASE_URL}/api/v1/customer/balance", headers={"X-API-Key": api_key})


def query_without_key(service: str) -> httpx.Response:
    return httpx.get(f"{BASE_URL}/api/v1/price?service={service}", params={"country": "us"})


def log_fields() -> None:
    log.debug("request id %s", request.headers.get("X-Request-Id"))
    log.info("upstream %s", BASE_URL)


def constant_time(secret: bytes, body: bytes) -> bool:
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    signature = request.headers.get("X-VirtualSMS-Signature", "")
    if signature == "" or len(signature) != 64:
        return False
    return hmac.compare_digest(signature, expected)


def flask_webhook(secrets: list[str]):
    raw = request.get_data()
    try:
        verify(raw, request.headers, secrets)  # raises WebhookError; returns the Event
    except WebhookError as err:
        return err.reason, 400
    event = json.loads(raw)  # parsing after verification is fine
    return event["id"]


def fixed_base_url() -> httpx.Client:
    timeout = float(request.args.get("timeout", "10"))
    return httpx.Client(base_url=BASE_URL, timeout=timeout)


def verifier_before_json(verifier):
    event = verifier.verify(request.get_data(), request.headers)  # raw bytes first
    return json.loads(request.get_data())["id"], event


def request_input_in_the_path_not_the_base():
    order_id = request.args["order_id"]
    return httpx.get(f"{BASE_URL}/api/v1/customer/order/{order_id}", params={"country": "us"})
