"""Fast, lean loading of the AWS provider bindings in the jsii kernel.

The Python side needs nothing: `cdktn_provider_aws` loads its ~2,400 resource submodules on
first attribute access and jsii caches the bindings' type hints. The JavaScript side does
not: the provider's `lib/index.js` requires every module, so the first resource a stack
creates costs ~600 MB more in the kernel. `provider_lazy_require.js`, preloaded into the
kernel through NODE_OPTIONS, serves that file as lazy getters, so Node loads only what a
stack uses. The synthesized JSON is byte-identical (a test proves it).

The jsii kernel also runs in one Node process (`jsii_inprocess_runtime.js`, ~50 MB less than
jsii's relay plus child).

`modules/__init__.py` calls `install()`, so anything imported from `modules` gets the
fast path, provided the kernel has not started yet (it starts with the first jsii import).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

NODE_HOOK = Path(__file__).with_name("provider_lazy_require.js")
INPROCESS_RUNTIME = Path(__file__).with_name("jsii_inprocess_runtime.js")


def install() -> None:
    """Set the jsii kernel's Node options and runtime before it starts (idempotent)."""
    # jsii prints an end-of-life banner for Node 20 on every run; Node 20 is what runs the kernel here.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if kernel_started():
        return  # its environment is fixed: change nothing, so lazy and eager stay consistent
    # The kernel (started on first use, after this) inherits the environment. Its work is
    # short-lived request objects: a 4 MB young generation (V8 default 16 MB) saves ~25 MB
    # resident for a few more, cheap scavenges.
    options = f'--require "{NODE_HOOK}" --max-semi-space-size=4'
    if str(NODE_HOOK) not in os.environ.get("NODE_OPTIONS", ""):
        os.environ["NODE_OPTIONS"] = f"{os.environ.get('NODE_OPTIONS', '')} {options}".strip()
    # The jsii kernel runs in one Node process instead of a relay plus a child (~50 MB less),
    # with the --preserve-symlinks the relay would have given it.
    if "JSII_RUNTIME" not in os.environ:
        jsii = importlib.util.find_spec("jsii")  # located, not imported: importing `modules` stays cheap
        embedded = Path(jsii.origin).parent / "_embedded" / "jsii" if jsii and jsii.origin else None
        if embedded is not None and (embedded / "lib__program.js").is_file():
            os.environ["LLM_PLATFORM_JSII_EMBEDDED"] = str(embedded)
            os.environ["JSII_RUNTIME"] = str(INPROCESS_RUNTIME)
            os.environ["NODE_OPTIONS"] += " --preserve-symlinks"


def kernel_started() -> bool:
    """A jsii assembly (`<package>._jsii`) is loaded only through a running kernel."""
    return any(name.endswith("._jsii") for name in sys.modules)


def is_lazy() -> bool:
    """True when the kernel loads the provider's JavaScript on demand (the hook is preloaded)."""
    return str(NODE_HOOK) in os.environ.get("NODE_OPTIONS", "")
