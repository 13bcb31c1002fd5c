"""TOOL-4, TOOL-5: the architecture diagram and the monthly cost estimate, both read from the
synthesized stacks."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest

from conftest import ENVIRONMENTS
from modules.tools import cost, diagram
from modules.tools.synthesized import SynthError, load

DOCS = Path(__file__).resolve().parent.parent / "docs"
SHIPPED = cost._shown(cost.ASSUMPTIONS)  # as the report names the shipped assumptions


@pytest.fixture(scope="module")
def synthesized(synth_outdir: Path):
    return {env.name: env for env in load(synth_outdir)}


def test_diagram_holds_each_environments_main_resources(synthesized) -> None:
    for name in ENVIRONMENTS:
        env = synthesized[name]
        text = diagram.dot(env)
        for expected in (f"llmlite-{name}-waf", f"llmlite-{name}-alb", f"llmlite-{name}-proxy",
                         f"llmlite-{name}-postgres", f"llmlite-{name}-redis", f"llmlite-{name}-gpu",
                         f"llmlite-{name}-llm", f"llmlite-{name}-chat", f"llmlite-{name}-chat-requests",
                         "authorizer, connect, disconnect, message, worker", "Amazon Bedrock", "database subnets"):
            assert expected in text, (name, expected)
        assert diagram.dot(env) == text  # deterministic
        nats = len(env.resources("aws_nat_gateway"))
        assert f'nat [label="{nats} NAT gateway{"s" if nats > 1 else ""}' in text
        for endpoint in env.resources("aws_vpc_endpoint"):
            assert endpoint["service_name"].removeprefix(f"com.amazonaws.{env.region}.") in text
        assert "gateway -> endpoints" in text and "nat -> egress" in text


PLURAL_SLIPS = re.compile(r"\(s\)|(?<![\d.])1 (nodes|pools|trails|dashboards|buckets|groups|AZs|rules|tasks|keys|"
                          r"alarms|composite alarms|KMS keys|NAT gateways|S3 buckets)\b|\b0 trail\b")


def test_counts_read_as_english(synthesized) -> None:
    """`1 node`, `2 nodes`, `0 trails`: never `1 nodes`, `0 trail` or `key(s)`."""
    text = cost.report(list(synthesized.values())) + "".join(diagram.dot(env) for env in synthesized.values())
    assert not PLURAL_SLIPS.search(text), PLURAL_SLIPS.search(text)
    assert "1 node ×" in cost.report([synthesized["dev"]]) and "2 nodes ×" in cost.report([synthesized["prod"]])
    assert "0 trails" in cost.report([synthesized["dev"]])


def test_diagram_renders_and_the_committed_prod_copy_is_current(synthesized, tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        pytest.skip("graphviz is not installed")
    written = diagram.render(synthesized["prod"], tmp_path)
    svg = next(p for p in written if p.suffix == ".svg")
    assert ElementTree.parse(svg).getroot().tag.endswith("svg")
    assert next(p for p in written if p.suffix == ".png").read_bytes().startswith(b"\x89PNG")
    assert (DOCS / "prod-architecture.dot").read_text() == diagram.dot(synthesized["prod"]), \
        "regenerate: python -m modules.tools.diagram prod && cp cdktf.out/diagrams/prod.* docs/ (see README)"


def test_every_synthesized_resource_type_is_priced_or_known_free(synthesized) -> None:
    for env in synthesized.values():
        assert cost.unpriced_types(env) == set(), env.name
    assert not cost.PRICED & cost.FREE


def line(lines: list[cost.Line], item: str) -> cost.Line:
    return next(entry for entry in lines if entry.item.startswith(item))


def test_arithmetic_on_known_cases(synthesized) -> None:
    prices, hours = cost.prices_for(synthesized["prod"])
    use = cost.assumptions_for("prod")
    lines = cost.estimate(synthesized["prod"], use, prices, hours)
    # three NAT gateways (one per zone) all month plus the processed gigabytes
    assert line(lines, "NAT gateways").usd == round(3 * 730 * 0.05 + use["nat_gb"] * 0.05, 2)
    # Multi-AZ doubles the instance line
    assert line(lines, "RDS db.t4g.small Multi-AZ").usd == round(2 * 730 * 0.036, 2)
    # the on-demand base and half the hosts above it (rounded up) run at full price: both of
    # prod's two; Spot only for the rest, at the stated discount
    assert line(lines, "GPU g5.xlarge on-demand").usd == round(2 * 730 * 1.258, 2)
    assert line(lines, "GPU g5.xlarge Spot").usd == 0
    dev_prices, _ = cost.prices_for(synthesized["dev"])
    dev = cost.estimate(synthesized["dev"], cost.assumptions_for("dev"), dev_prices, hours)
    assert line(dev, "GPU g5.xlarge on-demand").usd == 0  # on_demand_base = 0
    assert line(dev, "GPU g5.xlarge Spot").usd == round(730 * 0.625 * 1.258 * 0.4, 2)
    spot_tasks = line(dev, "Fargate Spot tasks")
    assert spot_tasks.usd == round(730 * (0.5 * 0.04656 + 1 * 0.00511) * 0.3, 2)


def test_prod_costs_more_than_dev_and_the_report_compares_them(synthesized) -> None:
    text = cost.report([synthesized["dev"], synthesized["prod"]])
    totals = {name: float(next(row for row in text.splitlines() if row.startswith("| total |")).split("|")[i]
                           .replace(",", "")) for i, name in ((2, "dev"), (3, "prod"))}
    assert totals["prod"] > totals["dev"] > 0
    assert "list prices of 2026-11-23" in text


def test_bad_input_gets_one_clear_line(synthesized, synth_outdir: Path, tmp_path: Path, capsys) -> None:
    assert cost.main(["staging", "--outdir", str(synth_outdir)]) == 2
    assert "environment 'staging' is not in the synth" in capsys.readouterr().err
    assert cost.main(["--outdir", str(tmp_path)]) == 2
    assert "run `python main.py` first" in capsys.readouterr().err
    prices = tmp_path / "prices.toml"
    prices.write_text('date = "x"\nsource = "y"\nhours_per_month = 730\n')
    with pytest.raises(SynthError, match="region eu-west-2 is not in prices.toml"):
        cost.prices_for(synthesized["prod"], prices)


def test_assumptions_file_problems_are_all_reported_in_one_run(synth_outdir: Path, tmp_path: Path, capsys) -> None:
    mine = tmp_path / "traffic.toml"
    mine.write_text('nat_gb = 1\n[default]\nnat_gbb = 3\n[dev]\ns3_gb = "10"\ngpu_hours_share = 2\nlogs_ingest_gb = -1\n'
                    "[prdo]\nnat_gb = 5\n")
    assert cost.main(["--outdir", str(synth_outdir), "--assumptions", str(mine)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert all(line.startswith(f"cost: assumptions {mine}: ") for line in lines)
    for expected in ("nat_gb: is a value outside any table.", "default.nat_gbb: is not a known assumption. Fix: did "
                     "you mean 'nat_gb'?", "dev.s3_gb: '10' is not a number.", "dev.gpu_hours_share: 2 is more than "
                     "the whole month.", "dev.logs_ingest_gb: -1 is negative.", "[prdo]: names no environment. Fix: "
                     "did you mean 'prod'?"):
        assert sum(expected in line for line in lines) == 1, expected
    assert len(lines) == 6
    assert cost.main(["--outdir", str(synth_outdir), "--assumptions", str(tmp_path / "missing.toml")]) == 2
    assert capsys.readouterr().err == (f"cost: assumptions {tmp_path / 'missing.toml'}: the file does not exist. "
                                       f"Fix: give an existing file; {SHIPPED} shows every key with its default.\n")


def test_a_partial_assumptions_file_is_laid_over_the_shipped_one_and_says_so(synthesized, tmp_path: Path) -> None:
    mine = tmp_path / "traffic.toml"
    mine.write_text("[default]\ns3_gb = 10\n[dev]\nnat_gb = 50\n")
    shipped_dev = cost.assumptions_for("dev")
    merged = cost.resolve_assumptions("dev", mine)
    assert merged.values == {**shipped_dev, "s3_gb": 10, "nat_gb": 50}  # yours first, the rest shipped
    assert merged.sources["nat_gb"] == f"{mine} [dev]" and merged.sources["s3_gb"] == f"{mine} [default]"
    assert merged.sources["cognito_mau"] == f"{SHIPPED} [dev]"
    assert cost.resolve_assumptions("prod", mine).values["nat_gb"] == cost.assumptions_for("prod")["nat_gb"]
    text = cost.report([synthesized["dev"]], mine)
    assert f"with {mine} over it" in text.splitlines()[0]
    assert (f"  assumptions: {mine} [dev]: nat_gb = 50; {mine} [default]: s3_gb = 10; "
            f"{SHIPPED} [dev]: 15 values; {SHIPPED} [default]: 1 value") in text
    assert "1 × 730 h + 50 GB" in text  # the NAT line uses your figure


def test_the_shipped_assumptions_are_valid_and_complete(synthesized) -> None:
    shipped = cost.read_assumptions(cost.ASSUMPTIONS, ENVIRONMENTS)
    assert set(shipped) - {"default"} <= set(ENVIRONMENTS)
    for name in ENVIRONMENTS:  # every figure the estimate reads has a shipped value
        env = synthesized[name]
        prices, hours = cost.prices_for(env)
        cost.estimate(env, cost.assumptions_for(name), prices, hours)
