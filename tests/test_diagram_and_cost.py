"""TOOL-4, TOOL-5: the architecture diagram and the monthly cost estimate, both read from the
synthesized stacks."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest

from conftest import ENVIRONMENTS
from modules.config import load_environment
from modules.tools import cost, diagram
from modules.tools.synthesized import Environment, SynthError, load, plural

DOCS = Path(__file__).resolve().parent.parent / "docs"
SHIPPED = cost._shown(cost.ASSUMPTIONS)  # as the report names the shipped assumptions
SHIPPED_PRICES = cost.PRICES


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
                         "authorizer, connect, disconnect, eraser, message, worker", "Amazon Bedrock", "database subnets"):
            assert expected in text, (name, expected)
        assert diagram.dot(env) == text  # deterministic
        nats = len(env.resources("aws_nat_gateway"))
        assert f'nat [label="{nats} NAT gateway{"s" if nats > 1 else ""}' in text
        for endpoint in env.resources("aws_vpc_endpoint"):
            assert endpoint["service_name"].removeprefix(f"com.amazonaws.{env.region}.") in text
        assert "gateway -> endpoints" in text and "nat -> egress" in text
        buckets = [b["bucket"] for b in env.resources("aws_s3_bucket")]
        holds = re.search(r'logs \[label="\d+ S3 buckets?\\n([^"]*)"', text).group(1).split(", ")
        assert holds == diagram.bucket_purposes(buckets) and len(holds) >= 3, (name, holds)
        assert ("state" in holds) is any(stack == "state" for stack in env.stacks), name  # dev: no state bucket
        assert ("trail" in holds) is bool(env.resources("aws_cloudtrail")), name


PLURAL_SLIPS = re.compile(r"\(s\)|(?<![\d.])1 (nodes|pools|trails|dashboards|buckets|groups|AZs|rules|tasks|keys|"
                          r"alarms|composite alarms|KMS keys|NAT gateways|S3 buckets)\b|\b0 trail\b")


def test_counts_read_as_english(synthesized) -> None:
    """`1 node`, `2 nodes`, `0 trails`: never `1 nodes`, `0 trail` or `key(s)`."""
    text = cost.report(list(synthesized.values())) + "".join(diagram.dot(env) for env in synthesized.values())
    assert not PLURAL_SLIPS.search(text), PLURAL_SLIPS.search(text)
    for env in priced(synthesized):
        nodes = sum(g["num_cache_clusters"] for g in env.resources("aws_elasticache_replication_group"))
        trails = len(env.resources("aws_cloudtrail"))
        assert f"{plural(nodes, 'node')} ×" in text and plural(trails, "trail") in text, env.name


def priced(synthesized) -> list[Environment]:
    """The environments whose region the price table holds."""
    regions = cost.read_prices()
    return [env for env in synthesized.values() if env.region in regions]


def test_diagram_renders_and_the_committed_prod_copy_is_current(synthesized, tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        pytest.skip("graphviz is not installed")
    written = diagram.render(synthesized["prod"], tmp_path)
    svg = next(p for p in written if p.suffix == ".svg")
    assert ElementTree.parse(svg).getroot().tag.endswith("svg")
    assert next(p for p in written if p.suffix == ".png").read_bytes().startswith(b"\x89PNG")
    assert (DOCS / "prod-architecture.dot").read_text() == diagram.dot(synthesized["prod"]), \
        "regenerate: python -m modules.tools.diagram prod && for f in dot svg png; do cp cdktf.out/diagrams/prod.$f docs/prod-architecture.$f; done"


def test_every_synthesized_resource_type_is_priced_or_known_free(synthesized) -> None:
    for env in synthesized.values():
        assert cost.unpriced_types(env) == set(), env.name
    assert not cost.PRICED & cost.FREE


def line(lines: list[cost.Line], item: str) -> cost.Line:
    return next(entry for entry in lines if entry.item.startswith(item))


def test_arithmetic_on_known_cases(synthesized) -> None:
    prices, hours = cost.prices_for(synthesized["prod"])
    use = cost.assumptions_for(synthesized["prod"])
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
    dev = cost.estimate(synthesized["dev"], cost.assumptions_for(synthesized["dev"]), dev_prices, hours)
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
    assert cost.main(["NO_SUCH_ENV", "--outdir", str(synth_outdir)]) == 2
    assert "environment 'NO_SUCH_ENV' is not in the synth" in capsys.readouterr().err
    assert cost.main(["--outdir", str(tmp_path)]) == 2
    assert "run `python main.py` first" in capsys.readouterr().err
    prices = tmp_path / "prices.toml"
    prices.write_text('date = "x"\nsource = "y"\nhours_per_month = 730\n')
    with pytest.raises(SynthError, match=f"no prices for eu-west-2 in {prices}"):
        cost.prices_for(synthesized["prod"], prices)


def shipped_prices_with(tmp_path: Path, old: str, new: str) -> Path:
    text = SHIPPED_PRICES.read_text()
    assert old in text
    (tmp_path / "prices.toml").write_text(text.replace(old, new, 1))
    return tmp_path / "prices.toml"


def test_the_price_table_is_validated_on_load_every_problem_naming_the_file(tmp_path: Path, synth_outdir: Path,
                                                                           monkeypatch, capsys) -> None:
    cost.read_prices()  # the shipped table is complete
    region = '\n[eu-central-1]\nalb_hour = 0.03\nnat_gateway_hour = "0.05"\n'
    path = shipped_prices_with(tmp_path, "[us-west-2]\nnat_gateway_hour = 0.045\n", region + "[us-west-2]\n")
    with pytest.raises(SynthError) as err:
        cost.read_prices(path)
    lines = str(err.value).splitlines()
    assert all(line.startswith(f"prices {path}: ") for line in lines)
    section = next(line for line in lines if "[eu-central-1]: lacks" in line)
    assert "nat_gateway_gb" in section and "instances.'g5.xlarge'" in section and "[eu-central-1.instances]" in section
    assert "alb_hour" not in section  # present
    assert any("[us-west-2]: lacks nat_gateway_hour. Fix:" in line for line in lines)
    assert any("eu-central-1.nat_gateway_hour: '0.05' is not a price" in line for line in lines)
    assert len(lines) == 3
    monkeypatch.setattr(cost, "PRICES", path)  # the command: exit 2, every problem on its own line
    assert cost.main(["--outdir", str(synth_outdir)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"cost: {line}" for line in lines]
    without_type = shipped_prices_with(tmp_path, '"g6.xlarge" = 0.8048\n', "")
    with pytest.raises(SynthError, match=r"\[us-west-2\]: lacks instances.'g6.xlarge'"):
        cost.read_prices(without_type)


def test_a_region_without_prices_is_said_plainly_and_the_rest_is_estimated(synthesized, synth_outdir: Path,
                                                                           capsys) -> None:
    elsewhere = moved(synthesized["prod"], "elsewhere", "eu-central-1")
    assert "eu-central-1" not in cost.read_prices()
    text = cost.report([elsewhere, synthesized["prod"]])
    assert ("elsewhere (eu-central-1): no prices for eu-central-1 in modules/tools/prices.toml, so no estimate. "
            "Fix: add [eu-central-1] and [eu-central-1.instances] with its list prices.") in text
    assert "| layer | prod |" in text and "| total |" in text


def moved(env: Environment, name: str, region: str | None = None) -> Environment:
    """A copy of a synthesized environment under another name (and region)."""
    stacks = copy.deepcopy(env.stacks)
    if region:
        for provider in stacks["network"]["provider"]["aws"]:
            provider["region"] = region
    return Environment(name, stacks)


def test_a_new_environment_gets_the_smallest_profile_and_the_report_names_each_profile(synthesized) -> None:
    profiles = cost.read_profiles()
    for name, profile in profiles.tables.items():  # the fallback is the smallest in every figure
        assert all(profiles.tables[cost.SMALLEST][key] <= value for key, value in profile.items()), name
    newcomer = moved(synthesized["prod"], "newcomer")
    assert cost.resolve_assumptions(newcomer).profile == cost.SMALLEST
    text = cost.report([newcomer, *priced(synthesized)])
    assert "newcomer (eu-west-2), traffic profile 'small'" in text
    for env in priced(synthesized):
        assert f"{env.name} ({env.region}), traffic profile {profiles.of(env.name)!r}" in text


def test_the_gpu_share_of_a_scheduled_group_comes_from_its_schedule(synthesized) -> None:
    for env in synthesized.values():
        llm = load_environment(env.name).llm
        use = cost.resolve_assumptions(env)
        if llm.scheduled_scaling:
            assert use.values["gpu_hours_share"] == ((llm.scale_down_hour - llm.scale_up_hour) % 24) / 24
            assert use.sources["gpu_hours_share"] == cost.SCHEDULE
        else:
            assert use.values["gpu_hours_share"] == cost.read_profiles().tables[use.profile]["gpu_hours_share"]
    def scheduled(up: int, down: int) -> Environment:
        return Environment("x", {"llm": {"resource": {"aws_autoscaling_schedule": {
            "up": {"recurrence": f"0 {up} * * *", "desired_capacity": 2},
            "down": {"recurrence": f"0 {down} * * *", "desired_capacity": 0}}}}})
    assert cost.scheduled_gpu_share(scheduled(7, 19)) == 0.5
    assert cost.scheduled_gpu_share(scheduled(22, 4)) == 0.25  # across midnight
    assert "0.625" not in cost.ASSUMPTIONS.read_text()


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
    dev, prod = synthesized["dev"], synthesized["prod"]
    shipped_dev = cost.assumptions_for(dev)
    merged = cost.resolve_assumptions(dev, mine)
    assert merged.values == {**shipped_dev, "s3_gb": 10, "nat_gb": 50}  # yours first, the rest shipped
    assert merged.sources["nat_gb"] == f"{mine} [dev]" and merged.sources["s3_gb"] == f"{mine} [default]"
    assert merged.sources["cognito_mau"] == f"{SHIPPED} [small]"
    assert cost.resolve_assumptions(prod, mine).values["nat_gb"] == cost.assumptions_for(prod)["nat_gb"]
    text = cost.report([dev], mine)
    assert f"with {mine} over it" in text.splitlines()[0]
    assert (f"  assumptions: {cost.SCHEDULE}: gpu_hours_share = 0.625; {mine} [dev]: nat_gb = 50; "
            f"{mine} [default]: s3_gb = 10; {SHIPPED} [small]: 15 values") in text
    assert "1 × 730 h + 50 GB" in text  # the NAT line uses your figure


def test_the_shipped_assumptions_are_valid_and_complete(synthesized) -> None:
    profiles = cost.read_profiles()
    assert set(profiles.chosen) <= set(ENVIRONMENTS)
    for env in priced(synthesized):  # every figure the estimate reads has a shipped value
        prices, hours = cost.prices_for(env)
        cost.estimate(env, cost.assumptions_for(env), prices, hours)


def test_a_broken_shipped_profile_is_one_clear_error(tmp_path: Path) -> None:
    text = cost.ASSUMPTIONS.read_text().replace("cognito_mau = 1000\n", "")
    text = text.replace('prod = "production"\n', 'prod = "prodution"\n', 1)
    (tmp_path / "a.toml").write_text(text)
    with pytest.raises(SynthError) as err:
        cost.read_profiles(tmp_path / "a.toml")
    assert str(err.value).splitlines() == [
        f"assumptions {tmp_path / 'a.toml'}: [production]: lacks cognito_mau. Fix: every profile holds every key.",
        f"assumptions {tmp_path / 'a.toml'}: environments.prod: 'prodution' is not a profile. Fix: use one of: "
        "production, small."]
