"""Erasing a user (right to be forgotten): the operator's command against the eraser function
(run in-process against moto and a real redis-server) and a fake LiteLLM admin API shaped
like the pinned version's management endpoints (/key/list, /user/delete, /key/delete)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlparse

import pytest

from chat_support import LambdaContext, Platform, load_handler
from chat_support import aws, model_server, platform, redis_server  # noqa: F401 (fixtures)
from modules.tools import erase_user

MASTER_KEY = "sk-master-test"


class FakeProxy:
    """LiteLLM's admin endpoints as its source defines them: /key/list filters on an exact
    user_id, pages of at most 100 (`total_pages`); /user/delete deletes the user record and
    every key of the user (404 when no record exists); /key/delete deletes keys by hash."""

    def __init__(self) -> None:
        self.users: set[str] = set()
        self.keys: dict[str, str] = {}  # hash -> user_id
        self.calls: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {MASTER_KEY}":
                    self._reply(401, {"error": "Authentication Error"})
                    return False
                return True

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                proxy.calls.append(("GET", url.path))
                if not self._authorized():
                    return
                if url.path != "/key/list":
                    return self._reply(404, {"detail": "Not Found"})
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                page, size = int(query.get("page", 1)), int(query.get("size", 10))
                if size > 100:
                    return self._reply(422, {"detail": "size must be <= 100"})
                mine = sorted(h for h, user in proxy.keys.items() if user == query.get("user_id"))
                pages = max(1, -(-len(mine) // size))
                self._reply(200, {"keys": mine[(page - 1) * size:page * size], "total_count": len(mine),
                                  "current_page": page, "total_pages": pages})

            def do_POST(self) -> None:  # noqa: N802
                proxy.calls.append(("POST", self.path))
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/user/delete":
                    missing = [u for u in body["user_ids"] if u not in proxy.users]
                    if missing:
                        return self._reply(404, {"detail": {"error": f"User not found, passed user_id={missing[0]}"}})
                    for user in body["user_ids"]:
                        proxy.users.discard(user)
                        for token in [h for h, owner in proxy.keys.items() if owner == user]:
                            del proxy.keys[token]
                    return self._reply(200, {"deleted_users": body["user_ids"]})
                if self.path == "/key/delete":
                    for token in body["keys"]:
                        proxy.keys.pop(token, None)
                    return self._reply(200, {"deleted_keys": body["keys"]})
                self._reply(404, {"detail": "Not Found"})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def proxy() -> Iterator[FakeProxy]:
    fake = FakeProxy()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def eraser_in_process(event: dict[str, Any]) -> dict[str, Any]:
    return load_handler("eraser").handler(event, LambdaContext())


def test_the_command_erases_chat_data_and_the_users_virtual_keys(platform: Platform, proxy: FakeProxy) -> None:
    platform.history.put_item(Item={"userSession": "user-a#s-1", "createdAt": 1, "userId": "user-a"})
    platform.connections.put_item(Item={"connectionId": "c-1", "userId": "user-a"})
    proxy.users |= {"user-a", "user-b"}
    proxy.keys.update({f"hash-a-{i}": "user-a" for i in range(150)})  # two pages of /key/list
    proxy.keys["hash-b"] = "user-b"
    report = erase_user.erase("user-a", chat=eraser_in_process, proxy=erase_user.ProxyAdmin(proxy.url, MASTER_KEY))
    assert report["chat"] == {"exchanges": 1, "claims": 0, "connections": 1, "cached_answers": 0}
    assert report["gateway"]["virtual_keys"] == 150 and report["gateway"]["user_record"] == 1
    assert "not erased" in report["gateway"]["spend_rows"]  # no such endpoint: said, not hidden
    assert proxy.users == {"user-b"} and proxy.keys == {"hash-b": "user-b"}
    assert ("POST", "/key/delete") not in proxy.calls  # /user/delete took the keys with the user
    assert platform.exchanges() == []


def test_keys_made_for_a_user_id_without_a_user_record_are_deleted_by_hash(platform: Platform,
                                                                           proxy: FakeProxy) -> None:
    proxy.keys.update({"hash-1": "sub-1", "hash-2": "sub-1", "hash-x": "sub-2"})
    report = erase_user.erase("user-a", chat=eraser_in_process, proxy=erase_user.ProxyAdmin(proxy.url, MASTER_KEY),
                              proxy_user_id="sub-1")
    assert report["gateway"]["virtual_keys"] == 2 and report["gateway"]["user_record"] == 0
    assert proxy.keys == {"hash-x": "sub-2"}


def test_a_refused_admin_call_fails_the_command_instead_of_reporting_success(platform: Platform,
                                                                              proxy: FakeProxy) -> None:
    with pytest.raises(erase_user.EraseError, match="GET /key/list answered 401"):
        erase_user.erase("user-a", chat=eraser_in_process, proxy=erase_user.ProxyAdmin(proxy.url, "sk-wrong"))


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is required")
def test_deployed_names_are_read_from_the_stacks_outputs(tmp_path: Path) -> None:
    stack = tmp_path / "dev-realtime"
    stack.mkdir()
    (stack / "main.tf.json").write_text(json.dumps({"output": {
        "eraser_function_name": {"value": "llmlite-dev-chat-eraser"}}}))
    applied = subprocess.run(["terraform", f"-chdir={stack}", "apply", "-auto-approve", "-input=false"],
                             capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert erase_user.stack_outputs(stack) == {"eraser_function_name": "llmlite-dev-chat-eraser"}
    with pytest.raises(erase_user.EraseError, match="terraform output failed"):
        erase_user.stack_outputs(tmp_path / "not-deployed")


class FakeLambda:
    """lambda.invoke as boto3 returns it: a streaming Payload, FunctionError on a failed run."""

    def __init__(self, handler: Any) -> None:
        self.handler, self.invoked = handler, []

    def invoke(self, *, FunctionName: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        import io
        self.invoked.append(FunctionName)
        try:
            return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(self.handler(json.loads(Payload))).encode())}
        except ValueError as err:
            return {"StatusCode": 200, "FunctionError": "Unhandled",
                    "Payload": io.BytesIO(json.dumps({"errorMessage": str(err)}).encode())}


def test_the_command_reads_names_from_the_outputs_and_the_key_from_its_secret(
        platform: Platform, proxy: FakeProxy, monkeypatch, capsys) -> None:
    import boto3
    secret = boto3.client("secretsmanager").create_secret(Name="master-key", SecretString=MASTER_KEY)["ARN"]
    outputs = {"dev-realtime": {"eraser_function_name": "llmlite-dev-chat-eraser"},
               "dev-gateway": {"master_key_secret_arn": secret}}
    monkeypatch.setattr(erase_user, "stack_outputs", lambda stack_dir: outputs[stack_dir.name])
    functions = FakeLambda(eraser_in_process)

    class Session:
        def client(self, service: str, **kw: Any) -> Any:
            return functions if service == "lambda" else boto3.client(service)

    monkeypatch.setattr(erase_user, "_session", lambda env: Session())
    proxy.users.add("user-a")
    with pytest.raises(SystemExit, match="https"):  # the master key travels only over TLS
        erase_user.main(["dev", "user-a", "--proxy-url", proxy.url])
    real, urls = erase_user.ProxyAdmin, []
    monkeypatch.setattr(erase_user, "ProxyAdmin", lambda url, key: urls.append(url) or real(proxy.url, key))
    assert erase_user.main(["dev", "user-a"]) == 0  # the URL from dev's realtime.model_endpoint_url, then the fake
    report = json.loads(capsys.readouterr().out)
    assert functions.invoked == ["llmlite-dev-chat-eraser"] and urls == ["https://api.dev.example.com"]
    assert report["gateway"]["user_record"] == 1 and proxy.users == set()
    with pytest.raises(erase_user.EraseError, match="llmlite-dev-chat-eraser failed: .*userId"):
        erase_user.main(["dev", "user#a"])
