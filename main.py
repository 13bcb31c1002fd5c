"""Synthesize the LLM platform's Terraform: `python main.py [ENV ...]` (default: every environment).

Every selected environment is loaded and validated before any construct is built; on a
configuration error nothing is synthesized and the problems are printed with their fixes.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from modules.app import build_app  # noqa: E402  (the fast provider path installs on import)
from modules.config import ConfigError, available_environments, load_environments  # noqa: E402


def main(argv: list[str]) -> int:
    names = argv or available_environments()
    try:
        environments = load_environments(names)
    except ConfigError as err:
        print(f"configuration error, nothing synthesized:\n{err}", file=sys.stderr)
        return 2
    build_app(environments).synth()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
