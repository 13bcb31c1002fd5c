"""The worker's model client against a server answering as the platform's edge does.

The chat worker calls the gateway's public URL, so the WAF is in its path: a WAF block is a
403 with WAF's default body (AWS WAF developer guide, "Default actions": a blocked request is
answered HTTP 403 Forbidden), while LiteLLM answers a missing or invalid virtual key with 401
(`ProxyErrorTypes.auth_error`, litellm/proxy/auth/user_api_key_auth.py of 1.108.11).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import chat_support  # noqa: F401 (puts lambda/ on the path, as the zips lay it out)

from chat_common import model

# What an ALB behind WAF answers a blocked request (default block action, no custom response).
WAF_BLOCK_BODY = (b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n"
                  b"<center><h1>403 Forbidden</h1></center>\r\n</body>\r\n</html>\r\n")


@pytest.fixture
def edge() -> Iterator[tuple[str, dict[str, Any]]]:
    """A server whose answer the test chooses: {"status": …, "body": …, "type": …}."""
    answer: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(answer["status"])
            self.send_header("Content-Type", answer["type"])
            self.send_header("Content-Length", str(len(answer["body"])))
            self.end_headers()
            self.wfile.write(answer["body"])

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", answer
    finally:
        server.shutdown()
        server.server_close()


def call(endpoint: str) -> str:
    settings = model.ModelSettings(endpoint=endpoint, api_key_secret_arn="arn:aws:secretsmanager:x", timeout_seconds=5)
    return model.complete(settings, "sk-key", "m", [{"role": "user", "content": "hi"}])


def test_a_waf_block_is_retried_and_not_read_as_rejected_credentials(edge) -> None:
    endpoint, answer = edge
    answer.update(status=403, body=WAF_BLOCK_BODY, type="text/html")
    with pytest.raises(model.ModelUnavailable, match="WAF") as raised:
        call(endpoint)
    # Rejected credentials make the worker drop its cached key; a WAF block must not.
    assert not isinstance(raised.value, model.CredentialsRejected)


def test_a_refused_key_is_read_as_rejected_credentials(edge) -> None:
    endpoint, answer = edge
    answer.update(status=401, type="application/json", body=json.dumps({"error": {
        "message": "Authentication Error, Invalid proxy server token passed.", "type": "auth_error",
        "param": "None", "code": "401"}}).encode())
    with pytest.raises(model.CredentialsRejected):
        call(endpoint)
