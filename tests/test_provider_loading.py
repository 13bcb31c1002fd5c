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
import cdktf_cdktf_provider_aws  # the real package first: the lazy installer then stands aside
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
    spec = importlib.util.find_spec("cdktf_cdktf_provider_aws")
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
    env = {k: v for k, v in os.environ.items() if k != "NODE_OPTIONS"}  # Node side eager too
    proc = subprocess.run([sys.executable, "-c", EAGER_SYNTH, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lazy = sorted(p.relative_to(synth_dir) for p in synth_dir.glob("*/cdk.tf.json"))
    eager = sorted(p.relative_to(tmp_path / "stacks") for p in (tmp_path / "stacks").glob("*/cdk.tf.json"))
    assert lazy == eager and len(lazy) >= 15
    for stack in lazy:
        assert (synth_dir / stack).read_bytes() == (tmp_path / "stacks" / stack).read_bytes(), stack
