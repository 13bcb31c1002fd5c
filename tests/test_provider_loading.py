"""The on-demand provider path (modules/provider.py) must change nothing but speed.

One eager synthesis (the provider's root package imported first, ~15 s) is compared byte
for byte with the session's lazy one, so a provider or jsii upgrade that breaks the trick
fails here instead of silently producing different Terraform.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modules import provider

ROOT = Path(__file__).resolve().parent.parent

EAGER_SYNTH = """
import sys
import cdktf_cdktf_provider_aws  # the real package first: the lazy installer then stands aside
import modules.provider
assert not modules.provider.is_lazy()
sys.argv = ["main.py", "--outdir", sys.argv[1]]
import runpy
runpy.run_path("main.py", run_name="__main__")
"""


def test_the_suite_and_the_app_use_the_fast_path() -> None:
    assert provider.is_lazy()
    out = subprocess.run([sys.executable, "-c", "import main, modules.provider as p; print(p.is_lazy())"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_lazy_and_eager_loading_synthesize_identical_json(synth_dir: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", EAGER_SYNTH, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lazy = sorted(p.relative_to(synth_dir) for p in synth_dir.glob("*/cdk.tf.json"))
    eager = sorted(p.relative_to(tmp_path / "stacks") for p in (tmp_path / "stacks").glob("*/cdk.tf.json"))
    assert lazy == eager and len(lazy) >= 15
    for stack in lazy:
        assert (synth_dir / stack).read_bytes() == (tmp_path / "stacks" / stack).read_bytes(), stack
