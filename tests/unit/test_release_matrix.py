"""Matrix expansion into cells, the --only/--skip filters, and the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from eulerpub.errors import ConfigError, UsageError
from eulerpub.profiles import Profile
from eulerpub.release.config import ReleaseConfig, load_config, load_profiles
from eulerpub.release.matrix import BuildKey, Cell, expand, parse_filter, select
from eulerpub.release.plan import make_plan, plan_to_json, render_plan

REPO = Path(__file__).resolve().parents[2]
SOURCE = Path("release.yaml")


def profile(name: str, **clouds) -> Profile:
    return Profile(name=name, releases=["24.03", "22.03"], arches=["x86_64", "aarch64"], clouds=clouds)


PROFILES = {
    "min": profile("min", aws={"regions": ["us-east-1"], "copy_to": ["us-west-2"]}),
    "hpc": profile("hpc", aws={"regions": ["eu-west-1"], "share": ["111"], "public": True}),
}


def config(**overrides) -> ReleaseConfig:
    data = {"profiles": ["min", "hpc"], "releases": ["24.03", "22.03"], "arches": ["x86_64", "aarch64"],
            "clouds": {"aws": {}, "huawei": {"regions": ["cn-north-4", "cn-east-3"]}}}
    return ReleaseConfig.model_validate({**data, **overrides})


def test_expand_is_the_full_cross_product_in_config_order():
    cells = expand(config(), PROFILES, source=SOURCE)
    assert len(cells) == 2 * 2 * 2 * (1 + 2)
    assert cells[0] == Cell("min", "24.03", "x86_64", "aws", "us-east-1", ("us-west-2",), (), False)
    assert [c.region for c in cells[:3]] == ["us-east-1", "cn-north-4", "cn-east-3"]
    assert cells[-1].key == "hpc/22.03/aarch64/huawei/cn-east-3"


def test_cloud_keys_left_out_take_the_profiles_values_and_given_ones_win():
    cells = expand(config(clouds={"aws": {"copy_to": []}}), PROFILES, source=SOURCE)
    hpc = next(c for c in cells if c.profile == "hpc")
    assert (hpc.region, hpc.share, hpc.public) == ("eu-west-1", ("111",), True)
    assert all(c.copy_to == () for c in cells)


def test_exclude_rules_drop_partial_cells():
    cells = expand(config(exclude=[{"profile": "hpc", "arch": "aarch64"}, {"region": "cn-east-3"}]),
                   PROFILES, source=SOURCE)
    assert not any(c.profile == "hpc" and c.arch == "aarch64" for c in cells)
    assert not any(c.region == "cn-east-3" for c in cells)
    assert any(c.profile == "min" and c.arch == "aarch64" for c in cells)
    assert len(cells) == (4 + 2) * 2


def test_a_cell_the_profile_cannot_build_names_the_key():
    narrow = {**PROFILES, "hpc": Profile(name="hpc", releases=["24.03"], arches=["x86_64", "aarch64"],
                                         clouds={"aws": {"regions": ["eu-west-1"]}})}
    with pytest.raises(ConfigError, match=r"release.yaml: releases\[1\]: profile 'hpc' does not build '22.03'"):
        expand(config(), narrow, source=SOURCE)
    assert expand(config(exclude=[{"profile": "hpc", "release": "22.03"}]), narrow, source=SOURCE)


@pytest.mark.parametrize(("clouds", "expected"), [
    ({"tencent": {}}, "release.yaml: clouds.tencent.regions: not set here nor in profile 'min'"),
    ({"aws": {"copy_to": ["us-east-1"]}}, "release.yaml: clouds.aws.copy_to: 'us-east-1' is also an import"),
    ({"aws": {"regions": ["a", "b"], "copy_to": ["c"]}}, "release.yaml: clouds.aws: with copy_to, list one"),
])
def test_region_problems_name_the_key(clouds, expected):
    with pytest.raises(ConfigError) as caught:
        expand(config(clouds=clouds), PROFILES, source=SOURCE)
    assert expected in str(caught.value)


@pytest.mark.parametrize(("text", "dimension", "values"), [
    ("cloud=aws", "cloud", {"aws"}),
    ("arch=x86_64, aarch64", "arch", {"x86_64", "aarch64"}),
    (" region = us-east-1 ,", "region", {"us-east-1"}),
])
def test_parse_filter(text, dimension, values):
    parsed = parse_filter(text)
    assert (parsed.dimension, parsed.values) == (dimension, frozenset(values))


@pytest.mark.parametrize(("text", "expected"), [
    ("cloud", "is not KEY=VALUE"), ("cloud=", "is not KEY=VALUE"), ("colour=red", "unknown key 'colour'"),
])
def test_bad_filters_say_what_the_keys_are(text, expected):
    with pytest.raises(UsageError, match=expected) as caught:
        parse_filter(text)
    assert "profile, release, arch, cloud, region" in str(caught.value)


def test_only_filters_or_within_a_key_and_and_across_keys_and_skip_drops():
    cells = expand(config(), PROFILES, source=SOURCE)
    chosen = select(cells, [parse_filter("cloud=huawei"), parse_filter("profile=min"), parse_filter("profile=hpc"),
                            parse_filter("release=24.03")], [parse_filter("region=cn-east-3")])
    assert {(c.profile, c.cloud, c.region, c.release) for c in chosen} == {
        ("min", "huawei", "cn-north-4", "24.03"), ("hpc", "huawei", "cn-north-4", "24.03")}
    assert len(chosen) == 4  # both arches
    assert select(cells) == cells


def test_filter_values_that_name_no_cell_are_errors():
    cells = expand(config(), PROFILES, source=SOURCE)
    with pytest.raises(UsageError, match="--only cloud=tencent matches no cell; cloud values are aws, huawei"):
        select(cells, [parse_filter("cloud=tencent")])
    with pytest.raises(UsageError, match=r"--skip region=us-west-2 matches no cell .it is a copy_to region"):
        select(cells, skip=[parse_filter("region=us-west-2")])


def test_plan_groups_cells_by_build_in_matrix_order():
    cells = expand(config(), PROFILES, source=SOURCE)
    plan = make_plan(select(cells, skip=[parse_filter("arch=aarch64")]), concurrency=3)
    assert [b.key for b in plan.builds] == [BuildKey("min", "24.03", "x86_64"), BuildKey("min", "22.03", "x86_64"),
                                            BuildKey("hpc", "24.03", "x86_64"), BuildKey("hpc", "22.03", "x86_64")]
    assert all(len(b.cells) == 3 for b in plan.builds)
    data = plan_to_json(plan)
    assert data["concurrency"] == 3
    assert data["builds"][2]["cells"][0] == {"cloud": "aws", "region": "eu-west-1", "copy_to": [],
                                             "share": ["111"], "public": True, "bucket": None}


def test_rendered_plan_names_every_cell():
    cells = expand(config(), PROFILES, source=SOURCE)
    text = render_plan(make_plan(cells, concurrency=2))
    assert text.splitlines()[0] == ("release plan: 24 cell(s) from 8 build(s); up to 2 boot test(s) and upload(s) "
                                    "at once, one build at a time")
    assert text.count("-> boot test -> publish:") == 8
    assert "    aws     us-east-1   copy to us-west-2; private" in text
    assert "    aws     eu-west-1   share with 111; public" in text
    assert render_plan(make_plan([], 1)) == "release plan: nothing to do (the filters leave no cell)"


def test_checked_in_release_yaml_plans_every_cell():
    path = REPO / "release.yaml"
    loaded = load_config(path)
    cells = expand(loaded, load_profiles(loaded, path), source=path)
    text = render_plan(make_plan(cells, loaded.concurrency))
    builds = {(c.profile, c.release, c.arch) for c in cells}
    assert len(cells) == len(builds) * 4  # one import region per cloud
    for cell in cells:
        assert f"build {cell.profile} {cell.release} {cell.arch} " in text
