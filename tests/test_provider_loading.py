"""The on-demand provider path (modules/provider.py, both its Python and Node halves) must
change nothing but speed.

One eager synthesis (the provider's root package imported first, ~15 s) is compared byte
for byte with the session's lazy one, so a provider or jsii upgrade that breaks the trick
fails here instead of silently producing different Terraform.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from modules import provider

ROOT = Path(__file__).resolve().parent.parent

EAGER_SYNTH = """
import os, sys
import cdktn_provider_aws  # the real package first: the lazy installer then stands aside
import modules.provider
assert not modules.provider.is_lazy()
assert "provider_lazy_require" not in os.environ.get("NODE_OPTIONS", "")
sys.argv = ["main.py", "--outdir", sys.argv[1]]
import runpy
runpy.run_path("main.py", run_name="__main__")
"""


def test_the_suite_and_the_app_use_the_fast_path() -> None:
    assert provider.is_lazy() and str(provider.NODE_HOOK) in os.environ["NODE_OPTIONS"]
    out = subprocess.run([sys.executable, "-c", "import main, os, modules.provider as p; "
                          "print(p.is_lazy(), 'provider_lazy_require' in os.environ['NODE_OPTIONS'])"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True True"


def test_node_hook_recognises_the_providers_entry_point(tmp_path: Path) -> None:
    """If the provider's lib/index.js changed shape, the hook would silently fall back to eager loading."""
    spec = importlib.util.find_spec("cdktn_provider_aws")
    tarball = next(Path(spec.submodule_search_locations[0], "_jsii").glob("*.jsii.tgz"))
    with tarfile.open(tarball) as archive:
        for member in ("package/package.json", "package/lib/index.js"):
            archive.extract(member, tmp_path, filter="data")
    entry = tmp_path / "package" / "lib" / "index.js"
    probe = (f"const m = require({json.dumps(str(entry))});"
             "const d = Object.getOwnPropertyDescriptor(m, 'vpc');"
             "console.log(Object.keys(m).length, typeof d.get);")
    out = subprocess.run(["node", "--require", str(provider.NODE_HOOK), "-e", probe], capture_output=True,
                         text=True, check=True).stdout.split()
    # every namespace is exposed, none loaded yet (the submodule files are not even extracted)
    assert int(out[0]) > 2000 and out[1] == "function"


def test_lazy_and_eager_loading_synthesize_identical_json(synth_dir: Path, tmp_path: Path) -> None:
    # Node side eager too, with jsii's own two-process runtime
    env = {k: v for k, v in os.environ.items()
           if k not in ("NODE_OPTIONS", "JSII_RUNTIME", "LLM_PLATFORM_JSII_EMBEDDED")}
    proc = subprocess.run([sys.executable, "-c", EAGER_SYNTH, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lazy = sorted(p.relative_to(synth_dir) for p in synth_dir.glob("*/cdk.tf.json"))
    eager = sorted(p.relative_to(tmp_path / "stacks") for p in (tmp_path / "stacks").glob("*/cdk.tf.json"))
    assert lazy == eager and len(lazy) >= 15
    for stack in lazy:
        assert (synth_dir / stack).read_bytes() == (tmp_path / "stacks" / stack).read_bytes(), stack


KERNEL_PROBE = """
import os, modules
from cdktn import App, TerraformStack
app = App(outdir=os.environ["OUT"])
TerraformStack(app, "probe")
app.synth()
def descendants(pid):
    for task in os.listdir(f"/proc/{pid}/task"):
        for child in open(f"/proc/{pid}/task/{task}/children").read().split():
            yield int(child)
            yield from descendants(int(child))
print("node processes:", sum(open(f"/proc/{c}/comm").read().strip() == "node" for c in descendants(os.getpid())))
"""


def test_the_jsii_kernel_runs_in_one_node_process_and_its_output_is_relayed(tmp_path: Path) -> None:
    """jsii's own runtime is a relay process plus the kernel; ours is the kernel alone, and
    what the kernel prints still reaches Python's stdout and stderr, not the protocol."""
    printer = tmp_path / "printer.js"
    printer.write_text('setImmediate(() => { console.log("kernel says hello"); console.error("kernel warns"); });')
    env = {**os.environ, "OUT": str(tmp_path / "out"),
           "NODE_OPTIONS": f"{os.environ['NODE_OPTIONS']} --require {printer}"}
    proc = subprocess.run([sys.executable, "-c", KERNEL_PROBE], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "node processes: 1" in proc.stdout
    assert "kernel says hello" in proc.stdout and "kernel warns" in proc.stderr
