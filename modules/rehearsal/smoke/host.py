"""Runs one Lambda invocation as Lambda's Python runtime would: `handler.handler(event, context)`
from the function's unpacked zip, in a process whose environment the caller set.

    python host.py CODE_DIR FUNCTION_NAME RESULT_FILE < event.json

No project import: only the function's own code and its packages are on the path. The
result (or the error) goes to RESULT_FILE as JSON, since the function logs to stdout.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from dataclasses import dataclass


@dataclass
class Context:
    function_name: str
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = ""
    aws_request_id: str = "smoke-invocation"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def main(code_dir: str, function_name: str, result_file: str) -> int:
    sys.path.insert(0, code_dir)
    event = json.load(sys.stdin)
    try:
        module = importlib.import_module("handler")
        result = module.handler(event, Context(function_name))
        outcome = {"result": result}
    except Exception as err:  # Lambda reports an unhandled error as the invocation's result
        outcome = {"errorType": type(err).__name__, "errorMessage": str(err),
                   "stackTrace": traceback.format_exc().splitlines()[-6:]}
    with open(result_file, "w", encoding="utf-8") as out:
        json.dump(outcome, out, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
