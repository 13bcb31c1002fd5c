"""What the rehearsal deployed, read from the stacks' states (`terraform show -json`)."""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator


@dataclass(frozen=True)
class SmokeStep:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'ok    ' if self.passed else 'FAILED'} {self.name}: {self.detail}"


class SmokeFailure(Exception):
    """The step's check did not hold; the message says what was expected and what was found."""


@contextmanager
def installing(directory: Path) -> Iterator[None]:
    """One installer at a time into `directory`, across threads and processes: environments
    rehearsed side by side, and the tests beside them, share what .build/smoke holds."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.with_name(directory.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


@dataclass(frozen=True)
class Deployment:
    """One environment after apply: each stack's `terraform show -json` document and its working
    directory (where the state's relative paths, such as Lambda zips, resolve)."""

    environment: str
    states: dict[str, dict[str, Any]]
    workdirs: dict[str, Path]
    endpoint_url: str  # the emulator every AWS API call goes to

    def stack(self, layer: str) -> str:
        return f"{self.environment}-{layer}"

    def resources(self, layer: str, type_: str) -> Iterator[dict[str, Any]]:
        """The `values` of every `type_` resource of the layer's stack (root and child modules)."""
        doc = self.states.get(self.stack(layer)) or {}
        modules = [doc.get("values", {}).get("root_module", {})]
        while modules:
            module = modules.pop()
            modules.extend(module.get("child_modules", []))
            for resource in module.get("resources", []):
                if resource.get("mode") == "managed" and resource.get("type") == type_:
                    yield resource.get("values") or {}

    def output(self, layer: str, name: str) -> Any:
        outputs = (self.states.get(self.stack(layer)) or {}).get("values", {}).get("outputs", {})
        if name not in outputs:
            raise SmokeFailure(f"{self.stack(layer)} has no output {name}")
        return outputs[name].get("value")

    def client(self, service: str, region: str) -> Any:
        import boto3

        return boto3.client(service, region_name=region, endpoint_url=self.endpoint_url, aws_access_key_id="test",
                            aws_secret_access_key="test")


def show_json(text: str) -> dict[str, Any]:
    return dict(json.loads(text))
