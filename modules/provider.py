"""Fast, on-demand loading of the AWS provider bindings.

`cdktn_provider_aws/__init__.py` imports all ~2,200 resource submodules (and
their jsii types) although a stack uses a few dozen: 11-18 s and ~570 MB per process.
Each submodule is self-contained (it imports only the package's `_jsii`, jsii, typeguard
and cdktn), so we register a bare package object carrying the real `__path__` before the
first import; Python then loads `cdktn_provider_aws.<resource>` on demand and never
runs the root `__init__`. The synthesized JSON is byte-identical (a test proves it).

The JavaScript side has the same shape: the provider's `lib/index.js` requires every
module. `provider_lazy_require.js`, preloaded into the jsii kernel through NODE_OPTIONS,
serves that file as lazy getters, so Node too loads only what a stack uses.

Two smaller savings ride along: the jsii kernel runs in one Node process
(`jsii_inprocess_runtime.js`, ~50 MB less than jsii's relay plus child), and the bindings'
per-call type checks reuse the hints of their generated stubs (~20 % of building the stacks).

`modules/__init__.py` calls `install()`, so anything imported from `modules` gets the
fast path. If the real package was already imported, nothing changes.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any

PACKAGE = "cdktn_provider_aws"


NODE_HOOK = Path(__file__).with_name("provider_lazy_require.js")
INPROCESS_RUNTIME = Path(__file__).with_name("jsii_inprocess_runtime.js")


def install() -> None:
    """Register the bare provider package in `sys.modules` and the Node hook (idempotent)."""
    # jsii prints an end-of-life banner for Node 20 on every run; the pinned toolchain needs Node 20.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    _memoize_binding_type_hints()
    if PACKAGE in sys.modules:
        return
    # The jsii kernel (started on first use, after this) inherits the environment. Its work
    # is short-lived request objects: a 4 MB young generation (V8 default 16 MB) saves ~25 MB
    # resident for a few more, cheap scavenges.
    options = f'--require "{NODE_HOOK}" --max-semi-space-size=4'
    if str(NODE_HOOK) not in os.environ.get("NODE_OPTIONS", ""):
        os.environ["NODE_OPTIONS"] = f"{os.environ.get('NODE_OPTIONS', '')} {options}".strip()
    # The jsii kernel runs in one Node process instead of a relay plus a child (~50 MB less),
    # with the --preserve-symlinks the relay would have given it.
    if "JSII_RUNTIME" not in os.environ:
        embedded = importlib.util.find_spec("jsii._embedded.jsii")
        if embedded is not None and embedded.submodule_search_locations:
            os.environ["LLM_PLATFORM_JSII_EMBEDDED"] = list(embedded.submodule_search_locations)[0]
            os.environ["JSII_RUNTIME"] = str(INPROCESS_RUNTIME)
            os.environ["NODE_OPTIONS"] += " --preserve-symlinks"
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{PACKAGE} is not installed; run `pipenv sync --dev`")
    package = types.ModuleType(PACKAGE, "AWS provider bindings, loaded per submodule.")
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    # A spec without a loader keeps importlib from ever executing the root __init__.
    package.__spec__ = importlib.machinery.ModuleSpec(PACKAGE, None, is_package=True)
    package.__spec__.submodule_search_locations = package.__path__
    sys.modules[PACKAGE] = package


def _memoize_binding_type_hints() -> None:
    """jsii bindings type-check every argument of every call, and each check re-derives the
    hints of a generated stub function (`typing.get_type_hints(_typecheckingstub__…)`): ~20 % of
    building all stacks. The stubs never change, so their hints are computed once."""
    if getattr(typing.get_type_hints, "memoizes_jsii_stubs", False):
        return
    original = typing.get_type_hints
    hints: dict[Any, dict[str, Any]] = {}

    def get_type_hints(obj: Any, globalns: Any = None, localns: Any = None, include_extras: bool = False) -> Any:
        if globalns is None and localns is None and not include_extras and getattr(
                obj, "__name__", "").startswith("_typecheckingstub__"):
            if obj not in hints:
                hints[obj] = original(obj)
            return hints[obj]
        return original(obj, globalns, localns, include_extras)

    get_type_hints.memoizes_jsii_stubs = True  # type: ignore[attr-defined]
    typing.get_type_hints = get_type_hints


def is_lazy() -> bool:
    """True when the provider package is the bare on-demand one."""
    module = sys.modules.get(PACKAGE)
    return module is not None and getattr(module.__spec__, "loader", None) is None
