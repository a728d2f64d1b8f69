"""What real IMS refuses or does that the emulator used to let slide (issue 10, Huawei items 1-4), through the
real CLI and adapter against the stricter emulator: the agency for cross-region copies, quick import of RAW,
strict tag keys (and images tagged the old way), and images shared with other projects."""

from __future__ import annotations

import json
import uuid

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkims.v2 import (
    CopyImageCrossRegionRequest,
    CopyImageCrossRegionRequestBody,
    ListImageByTagsRequest,
    ListImageByTagsRequestBody,
    ListImagesRequest,
    TagKeyValue,
    Tags,
)

from eulerpub.clouds import huawei
from eulerpub.clouds.base import WaitParams
from tests.emulators.ims import Image
from tests.integration.huawei.conftest import AGENCY
from tests.integration.sdkclouds import report, rows

OTHER_PROJECT = "fedcba9876543210fedcba9876543210"


@pytest.fixture(autouse=True)
def fast_unshare(monkeypatch):
    monkeypatch.setattr(huawei, "UNSHARE_WAIT", WaitParams(timeout=30, interval=0.01))


def without_agency(args: list[str]) -> list[str]:
    at = args.index("--agency")
    return args[:at] + args[at + 2:]


def seed_image(harness, region: str, name: str, tags: dict[str, str], *, shared: bool) -> Image:
    """An image already in the account (published earlier, or by hand), shared with another project or not."""
    template = next(iter(harness.emulator.images.values()), None)
    os_version = template.os if template else harness.emulator.os_versions[region][0]
    image = Image(str(uuid.uuid4()), region, harness.emulator.projects[region], name, os_version, 40, "x86", "bios",
                  "", tags=dict(tags), status="active", created_at="2020-01-01T00:00:00Z",
                  members={OTHER_PROJECT: "accepted"} if shared else {})
    harness.emulator.images[image.id] = image
    return image


def build_id_of(harness, cli, image) -> str:
    plan = cli(*harness.args(image, "--dry-run"))
    assert plan.exit_code == 0, plan.stderr
    return report(plan.stdout)["build_id"]


# -- 1. cross-region copies need an agency ------------------------------------------------------------------------

def test_copies_without_an_agency_are_refused_before_anything_is_uploaded(harness, cli, images):
    result = cli(*without_agency(harness.args(images["qcow2"])))

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "IAM agency" in line and "--agency NAME" in line and "clouds.huawei.agency" in line
    assert harness.creates() == 0 and harness.moto.calls("CreateMultipartUpload") == []


def test_every_copy_carries_the_agency_and_the_emulator_refuses_one_without_it(harness, cli, images):
    result = cli(*harness.args(images["qcow2"], share=False))

    assert result.exit_code == 0, result.stderr
    copies = harness.emulator.calls("CopyImageCrossRegion")
    assert sorted(c.body["region"] for c in copies) == sorted(harness.regions[1:])
    assert {c.body["agency_name"] for c in copies} == {AGENCY} and all(c.error is None for c in copies)
    source_id = rows(result.stdout)[harness.source]["image_id"]
    # the rule the preflight keeps eulerpub away from: IMS refuses a copy without agency_name
    client = huawei.HuaweiAdapter()._client(harness.source)
    for agency in (None, "no-such-agency"):
        body = CopyImageCrossRegionRequestBody(name="by-hand", region=harness.regions[1],
                                               project_name=harness.regions[1], agency_name=agency)
        with pytest.raises(ClientRequestException, match="agency"):
            client.copy_image_cross_region(CopyImageCrossRegionRequest(image_id=source_id, body=body))


def with_agency(args: list[str], agency: str) -> list[str]:
    at = args.index("--agency")
    return [*args[:at + 1], agency, *args[at + 2:]]


def test_an_agency_iam_does_not_know_fails_the_dry_run_preflight(harness, cli, images, monkeypatch):
    monkeypatch.setenv("HUAWEICLOUD_SDK_DOMAIN_ID", harness.emulator.domain_id)

    result = cli(*with_agency(harness.args(images["qcow2"], "--dry-run"), "no-such-agency"))

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "IAM has no agency 'no-such-agency'" in line and "Create Agency" in line and "--agency NAME" in line
    (lookup,) = harness.emulator.calls("ListAgencies")
    assert lookup.query == {"domain_id": harness.emulator.domain_id, "name": "no-such-agency"}
    assert harness.creates() == 0 and harness.moto.calls("CreateMultipartUpload") == []


def test_an_agency_iam_knows_passes_and_an_unreadable_iam_leaves_the_check_to_the_copy(harness, cli, images,
                                                                                       monkeypatch):
    monkeypatch.setenv("HUAWEICLOUD_SDK_DOMAIN_ID", harness.emulator.domain_id)
    assert cli(*harness.args(images["qcow2"], "--dry-run")).exit_code == 0
    harness.emulator.iam_readable = False  # a publishing user without IAM read permission

    result = cli(*with_agency(harness.args(images["qcow2"], "--dry-run"), "no-such-agency"))

    assert result.exit_code == 0, result.stderr
    assert "IAM refused to list agencies" in result.stderr
    assert [c.error for c in harness.emulator.calls("ListAgencies")] == [None, "IAM.0003"]
    assert harness.creates() == 0


# -- 3. strict tag keys, and images tagged the old way ------------------------------------------------------------

def test_a_tag_outside_the_strict_ims_rules_is_refused_before_anything_is_uploaded(harness, cli, images):
    result = cli(*harness.args(images["qcow2"], "--tag", "team:hpc=x"))

    assert result.exit_code == 2
    assert "tag team:hpc=x cannot be used on Huawei Cloud" in result.stderr
    assert harness.creates() == 0 and harness.moto.calls("CreateMultipartUpload") == []


def test_an_image_published_with_the_old_tag_keys_is_found_and_not_imported_again(harness, cli, images):
    build_id = build_id_of(harness, cli, images["qcow2"])
    name = report(cli(*harness.args(images["qcow2"], "--dry-run")).stdout)["name"]
    old = {"eulerpub:build-id": build_id, "eulerpub:profile": "custom", "eulerpub:release": "24.03-LTS-SP1",
           "eulerpub:arch": "x86_64", "managed-by": "eulerpub"}
    seeded = {region: seed_image(harness, region, name, old, shared=True) for region in harness.regions}

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 0, result.stderr
    assert {r: row["image_id"] for r, row in rows(result.stdout).items()} == {r: i.id for r, i in seeded.items()}
    assert harness.emulator.calls("CreateImage") == [] and harness.emulator.calls("CopyImageCrossRegion") == []
    assert harness.moto.calls("CreateMultipartUpload") == []
    lookups = harness.emulator.calls("ListImageByTags")
    assert lookups and all(c.body["tags_any"] == [{"key": "eulerpub-build-id", "values": [build_id]},
                                                  {"key": "eulerpub:build-id", "values": [build_id]}]
                           for c in lookups)
    (listed,) = huawei.HuaweiAdapter().list_images(harness.source, profile="custom")
    assert (listed.image_id, listed.build_id) == (seeded[harness.source].id, build_id)


# -- 4. shared images: found by tag, seen by the name check and by prune ------------------------------------------

def test_a_rerun_after_share_finds_the_shared_images_and_imports_no_duplicate(harness, cli, images):
    first = cli(*harness.args(images["qcow2"]))
    assert first.exit_code == 0, first.stderr
    assert all(harness.emulator.images[row["image_id"]].imagetype == "shared"
               for row in rows(first.stdout).values())
    calls = harness.creates()

    again = cli(*harness.args(images["qcow2"]))

    assert again.exit_code == 0, again.stderr
    assert harness.creates() == calls
    assert {r: row["image_id"] for r, row in rows(again.stdout).items()} == \
        {r: row["image_id"] for r, row in rows(first.stdout).items()}
    for region in harness.regions:
        assert len(harness.images(region)) == 1


def test_a_shared_image_of_another_build_with_the_name_is_a_collision(harness, cli, images):
    name = report(cli(*harness.args(images["qcow2"], "--dry-run")).stdout)["name"]
    other = seed_image(harness, harness.regions[2], name, {"eulerpub-build-id": "another", "managed-by": "eulerpub"},
                       shared=True)

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 2
    assert f"an image named {name!r} from another build already exists in {harness.regions[2]} ({other.id})" \
        in result.stderr
    assert harness.creates() == 0


def test_prune_sees_and_removes_an_older_shared_image(harness, cli, images):
    older = cli(*harness.args(images["raw"], "--name", "openEuler-24.03-LTS-SP1-x86_64-custom-old"))
    assert older.exit_code == 0, older.stderr
    newer = cli(*harness.args(images["qcow2"]))
    assert newer.exit_code == 0, newer.stderr
    old_id = rows(older.stdout)[harness.source]["image_id"]
    new_id = rows(newer.stdout)[harness.source]["image_id"]
    assert {harness.emulator.images[i].imagetype for i in (old_id, new_id)} == {"shared"}

    pruned = cli("prune", "--cloud", "huawei", "--region", harness.source, "--keep", "1", "--yes", "--json")

    assert pruned.exit_code == 0, pruned.stderr
    deleted = [(d["kind"], d["id"], d["ok"]) for d in json.loads(pruned.stdout)["deleted"]]
    assert deleted == [("image", old_id, True)]
    assert [i.id for i in harness.images(harness.source)] == [new_id]


def test_the_emulator_lists_a_shared_image_as_shared_and_by_tags_per_the_sdk_model(harness):
    client = huawei.HuaweiAdapter()._client(harness.source)
    shared = seed_image(harness, harness.source, "shared-one", {"team": "hpc", "managed-by": "eulerpub"}, shared=True)
    plain = seed_image(harness, harness.source, "plain-one", {"team": "web"}, shared=False)

    def listed(imagetype):
        return [i.id for i in client.list_images(ListImagesRequest(imagetype=imagetype)).images]

    assert listed("private") == [plain.id] and listed("shared") == [shared.id]

    def by_tags(**fields):
        body = ListImageByTagsRequestBody(action=fields.pop("action", "filter"), **fields)
        return client.list_image_by_tags(ListImageByTagsRequest(body=body))

    assert [r.resource_id for r in by_tags(tags=[Tags(key="team", values=["hpc", "ml"])]).resources] == [shared.id]
    assert [r.resource_id for r in by_tags(tags_any=[Tags(key="team", values=[])]).resources] == [shared.id, plain.id]
    assert [r.resource_id for r in by_tags(not_tags=[Tags(key="managed-by", values=[])]).resources] == [plain.id]
    assert by_tags(action="count", tags=[Tags(key="team", values=[])]).total_count == 2
    (hit,) = by_tags(matches=[TagKeyValue(key="resource_name", value="shared")]).resources
    assert (hit.resource_name, hit.resource_detail.status) == ("shared-one", "active")
    assert {(t.key, t.value) for t in hit.tags} == {("team", "hpc"), ("managed-by", "eulerpub")}
    for bad in ({"tags": []}, {"limit": "0"}, {"limit": "1001"}, {"action": "list"},
                {"tags": [Tags(key=f"k{n}", values=[]) for n in range(11)]},
                {"matches": [TagKeyValue(key="created_at", value="x")]}):
        with pytest.raises(ClientRequestException):
            by_tags(**bad)
