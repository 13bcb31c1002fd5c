"""Erase a user (right to be forgotten): `python -m modules.tools.erase_user ENV USER_ID`.

Run by an operator with the deploy role's credentials (the environment's deploy_role_arn is
assumed when set), after the user can no longer sign in. Two steps, each reported in counts:

1. the environment's eraser function (realtime layer, in the VPC where Redis is) deletes the
   user's chat history, claims, connection records and cached answers;
2. the gateway's admin API (LiteLLM, with the master key) deletes the user's virtual keys
   and user record: POST /user/delete (which deletes the user's keys with it), or, for keys
   made for a user id the proxy holds no user record of, POST /key/delete with the hashes
   GET /key/list returned. LiteLLM has no endpoint that deletes spend-log rows; the report
   says so, and the README gives the statement an operator runs for them.

Names come from the deployed stacks' outputs (`terraform output` in cdktf.out/stacks/…):
`eraser_function_name` (realtime) and `master_key_secret_arn` (gateway). The gateway's URL
is the environment's realtime.model_endpoint_url without its /v1 (override: --proxy-url).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.config import Config

from modules.config import load_environment

KEYS_PER_PAGE = 100  # /key/list's largest page
SPEND_ROWS = ("not erased: LiteLLM has no admin endpoint for spend-log rows; delete them in PostgreSQL "
              "(README, Erasing a user)")


class EraseError(Exception):
    pass


def stack_outputs(stack_dir: Path, run: Callable[..., Any] = subprocess.run) -> dict[str, Any]:
    """A deployed stack's outputs (`terraform output -json`), by name."""
    done = run(["terraform", f"-chdir={stack_dir}", "output", "-json"], text=True, capture_output=True)
    if done.returncode != 0:
        raise EraseError(f"terraform output failed in {stack_dir} (is the stack deployed and initialised?): "
                         f"{done.stderr.strip()[:500]}")
    return {name: entry["value"] for name, entry in json.loads(done.stdout or "{}").items()}


@dataclass(frozen=True)
class ProxyAdmin:
    """The few LiteLLM admin endpoints erasure needs (their shapes as in LiteLLM's management
    endpoints: key_management_endpoints.py, internal_user_endpoints.py)."""

    base_url: str
    master_key: str
    timeout_seconds: float = 30.0

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{self.base_url.rstrip('/')}{path}", method=method,
            data=None if body is None else json.dumps(body).encode("utf-8"),
            headers={"Authorization": f"Bearer {self.master_key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310 (operator's URL)
                return response.status, json.load(response)
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")[:300]
            err.close()
            return err.code, detail

    def user_keys(self, user_id: str) -> list[str]:
        """Hashes of the user's virtual keys (exact user_id match, every page)."""
        keys: list[str] = []
        page = 1
        while True:
            query = urllib.parse.urlencode({"user_id": user_id, "page": page, "size": KEYS_PER_PAGE})
            status, body = self._call("GET", f"/key/list?{query}")
            if status != 200:
                raise EraseError(f"GET /key/list answered {status}: {body}")
            keys += [k if isinstance(k, str) else k["token"] for k in body.get("keys", [])]
            if page >= int(body.get("total_pages") or 1):
                return keys
            page += 1

    def erase(self, user_id: str) -> dict[str, Any]:
        keys = self.user_keys(user_id)
        status, body = self._call("POST", "/user/delete", {"user_ids": [user_id]})
        if status == 200:
            return {"virtual_keys": len(keys), "user_record": 1, "spend_rows": SPEND_ROWS}
        if status != 404:  # 404: no user record, only keys made for that user id
            raise EraseError(f"POST /user/delete answered {status}: {body}")
        if keys:
            status, body = self._call("POST", "/key/delete", {"keys": keys})
            if status != 200:
                raise EraseError(f"POST /key/delete answered {status}: {body}")
        return {"virtual_keys": len(keys), "user_record": 0, "spend_rows": SPEND_ROWS}


def invoke_eraser(lambda_client: Any, function_name: str, event: dict[str, Any]) -> dict[str, Any]:
    answer = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode("utf-8"))
    payload = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        raise EraseError(f"{function_name} failed: {payload}")
    return payload


def erase(user_id: str, *, chat: Callable[[dict[str, Any]], dict[str, Any]], proxy: ProxyAdmin,
          proxy_user_id: str | None = None, scan_unindexed: bool = False) -> dict[str, Any]:
    """Both steps; the chat data first (it holds the conversations)."""
    chat_report = chat({"userId": user_id, "scanUnindexed": scan_unindexed})
    return {"userId": user_id, "chat": chat_report["erased"], "gateway": proxy.erase(proxy_user_id or user_id)}


def _session(env: Any) -> Any:
    session = boto3.Session(region_name=env.region)
    if not env.deploy_role_arn:
        return session
    credentials = session.client("sts").assume_role(RoleArn=env.deploy_role_arn,
                                                    RoleSessionName="erase-user")["Credentials"]
    return boto3.Session(aws_access_key_id=credentials["AccessKeyId"], region_name=env.region,
                         aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["SessionToken"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modules.tools.erase_user", description=__doc__.split("\n")[0])
    parser.add_argument("environment", help="the environment holding the user's data")
    parser.add_argument("user_id", help="the user's Cognito sub (the chat path's user id)")
    parser.add_argument("--proxy-user-id", help="the user's LiteLLM user_id, where keys were made for another id")
    parser.add_argument("--proxy-url", help="the gateway's base URL (default: realtime.model_endpoint_url without /v1)")
    parser.add_argument("--scan-unindexed", action="store_true",
                        help="also find history written before items carried userId (one table scan)")
    parser.add_argument("--synth-dir", type=Path, default=Path("cdktf.out"), help="the synth output (default: cdktf.out)")
    args = parser.parse_args(argv)
    env = load_environment(args.environment)
    stacks = args.synth_dir / "stacks"
    function = stack_outputs(stacks / f"{env.name}-realtime")["eraser_function_name"]
    secret_arn = stack_outputs(stacks / f"{env.name}-gateway")["master_key_secret_arn"]
    proxy_url = args.proxy_url or (env.realtime.model_endpoint_url or "").removesuffix("/").removesuffix("/v1")
    if not proxy_url.startswith("https://"):
        raise SystemExit("the gateway URL must be https://; pass --proxy-url")
    session = _session(env)
    master_key = session.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    # The eraser may run up to its 900 s timeout; a retried invoke would only erase again.
    lambda_client = session.client("lambda", config=Config(read_timeout=960, retries={"max_attempts": 1}))
    report = erase(args.user_id, chat=lambda event: invoke_eraser(lambda_client, function, event),
                   proxy=ProxyAdmin(proxy_url, master_key), proxy_user_id=args.proxy_user_id,
                   scan_unindexed=args.scan_unindexed)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EraseError as err:
        print(f"erase_user: {err}", file=sys.stderr)
        sys.exit(1)
