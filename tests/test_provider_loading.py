"""The on-demand provider path (modules/engine/provider.py and its Node hook) must change nothing
but speed and memory.

One eager synthesis (the provider package imported before `modules`, so the kernel starts
with jsii's own runtime and the provider's eager entry point, ~15 s) is compared byte for
byte with the session's lazy one, so a provider or jsii upgrade that breaks the hook fails
here instead of silently producing different Terraform.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from modules.engine import provider

ROOT = Path(__file__).resolve().parent.parent

EAGER_SYNTH = """
import os, sys
import cdktn_provider_aws  # starts the kernel first: the installer then stands aside
import modules.engine.provider
assert modules.engine.provider.kernel_started() and not modules.engine.provider.is_lazy()
assert "JSII_RUNTIME" not in os.environ
sys.argv = ["main.py", "dev", "--outdir", sys.argv[1]]  # every layer; one environment is enough
import runpy
runpy.run_path("main.py", run_name="__main__")
"""


def test_the_suite_and_the_app_use_the_fast_path() -> None:
    assert provider.is_lazy() and os.environ["JSII_RUNTIME"] == str(provider.INPROCESS_RUNTIME)
    out = subprocess.run([sys.executable, "-c", "import main, os, modules.engine.provider as p; "
                          "print(p.is_lazy(), 'provider_lazy_require' in os.environ['NODE_OPTIONS'])"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True True"


def _node_with_hook(probe: str) -> list[str]:
    return subprocess.run(["node", "--require", str(provider.NODE_HOOK), "-e", probe], capture_output=True,
                          text=True, check=True).stdout.split()


def test_node_hook_recognises_the_providers_entry_point(tmp_path: Path) -> None:
    """If the provider's lib/index.js changed shape, the hook would silently fall back to eager loading."""
    spec = importlib.util.find_spec("cdktn_provider_aws")
    tarball = next(Path(spec.submodule_search_locations[0], "_jsii").glob("*.jsii.tgz"))
    with tarfile.open(tarball) as archive:
        for member in ("package/package.json", "package/lib/index.js"):
            archive.extract(member, tmp_path, filter="data")
    entry = tmp_path / "package" / "lib" / "index.js"
    out = _node_with_hook(f"const m = require({json.dumps(str(entry))});"
                          "const d = Object.getOwnPropertyDescriptor(m, 'vpc');"
                          "console.log(Object.keys(m).length, typeof d.get, m.__esModule);")
    # every namespace is exposed, none loaded yet (the submodule files are not even extracted)
    assert int(out[0]) > 2000 and out[1:] == ["function", "true"]


def _fake_provider(root: Path, index_js: str) -> Path:
    (root / "lib" / "vpc").mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"name": "@cdktn/provider-aws"}))
    (root / "lib" / "vpc" / "index.js").write_text(
        'Object.defineProperty(exports, "__esModule", { value: true }); exports.Vpc = class Vpc {};')
    (root / "lib" / "plain.js").write_text("module.exports = { answer: 42 };")
    (root / "lib" / "index.js").write_text(index_js)
    return root / "lib" / "index.js"


def test_node_hook_loads_namespaces_on_first_access_as_the_original_would(tmp_path: Path) -> None:
    """The lazy namespaces equal what the compiled file itself exports, and a line the hook does
    not know (here a side effect) makes it load the original file untouched."""
    spec = importlib.util.find_spec("cdktn_provider_aws")
    tarball = next(Path(spec.submodule_search_locations[0], "_jsii").glob("*.jsii.tgz"))
    with tarfile.open(tarball) as archive:
        original = archive.extractfile("package/lib/index.js").read().decode()
    prelude = original[:original.index('Object.defineProperty(exports, "__esModule"')]
    body = ('Object.defineProperty(exports, "__esModule", { value: true });\n'
            "exports.plain = exports.vpc = void 0;\n"
            'exports.vpc = __importStar(require("./vpc/index"));\n'
            'exports.plain = __importStar(require("./plain"));\n')
    probe = ("const m = require(process.argv[1]);"
             "const lazy = typeof Object.getOwnPropertyDescriptor(m, 'vpc').get === 'function';"
             "console.log(lazy, typeof m.vpc.Vpc, m.plain.answer, m.plain.default.answer, Object.keys(m).join(','));")
    for name, text, lazy in (("lazy", prelude + body, "true"),
                             ("changed", prelude + body + 'console.log("side effect");\n', "false")):
        entry = _fake_provider(tmp_path / name, text)
        out = subprocess.run(["node", "--require", str(provider.NODE_HOOK), "-e", probe, str(entry)],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out[-5:] == [lazy, "function", "42", "42", "vpc,plain"], (name, out)


def test_lazy_and_eager_loading_synthesize_identical_json(synth_dir: Path, tmp_path: Path) -> None:
    # Node side eager too, with jsii's own two-process runtime
    env = {k: v for k, v in os.environ.items()
           if k not in ("NODE_OPTIONS", "JSII_RUNTIME", "LLM_PLATFORM_JSII_EMBEDDED")}
    proc = subprocess.run([sys.executable, "-c", EAGER_SYNTH, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    eager = sorted(p.relative_to(tmp_path / "stacks") for p in (tmp_path / "stacks").glob("*/cdk.tf.json"))
    lazy = sorted(p.relative_to(synth_dir) for p in synth_dir.glob("*/cdk.tf.json") if p.relative_to(synth_dir) in eager)
    assert lazy == eager and Path("account-dev/cdk.tf.json") in eager and len(eager) >= 10
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
