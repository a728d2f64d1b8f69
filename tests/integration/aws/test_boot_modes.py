"""Publish registers only the boot modes that are proven (issue 11), as moto's RegisterImage receives them.

Image files: the partition table decides (tests/disks.py writes real tables). Build records: what `eulerpub test`
kept beside the record (boottest.json) decides; a record that was never boot-tested falls back to the table.
"""

from __future__ import annotations

import json

import pytest

from eulerpub.manifest import Artifact, BaseImage, BootLayout, BuildRecord, sha256_file, write_json_atomic, write_record
from tests.disks import hybrid_head, mbr_head
from tests.integration.aws.conftest import IMAGE_SIZE, make_raw

REGION = "us-east-1"


def disk(path, head):
    make_raw(path)
    with open(path, "r+b") as handle:
        handle.write(head(IMAGE_SIZE))
    return path


def publish_image(cli, path, *extra, arch="x86_64"):
    return cli("publish", "--cloud", "aws", "--image", str(path), "--arch", arch, "--region", REGION, "--json",
               *extra)


def registered_mode(moto):
    (_region, sent), = moto.registered
    return sent.get("BootMode")


def test_an_mbr_image_is_registered_legacy_bios_and_uefi_preferred_is_refused(cli, publish_env, tmp_path):
    image = disk(tmp_path / "openEuler-24.03-LTS-SP1-x86_64.raw", mbr_head)

    refused = publish_image(cli, image, "--boot-mode", "uefi-preferred")
    assert refused.exit_code == 2
    (line,) = refused.stderr.strip().splitlines()
    assert "--boot-mode uefi-preferred needs bios and uefi boot proven" in line and "MBR" in line
    assert publish_env.calls("StartSnapshot") == []

    plan = publish_image(cli, image, "--dry-run")
    assert plan.exit_code == 0, plan.stderr
    boot = json.loads(plan.stdout)["boot"]
    assert boot["found"]["basis"] == "partition table" and boot["found"]["modes"] == ["bios"]
    assert boot["register"] == "legacy-bios"

    done = publish_image(cli, image)
    assert done.exit_code == 0, done.stderr
    assert registered_mode(publish_env) == "legacy-bios"


def test_a_hybrid_image_is_registered_uefi_preferred(cli, publish_env, tmp_path):
    image = disk(tmp_path / "openEuler-24.03-LTS-SP1-x86_64.raw", hybrid_head)
    done = publish_image(cli, image)
    assert done.exit_code == 0, done.stderr
    assert registered_mode(publish_env) == "uefi-preferred"


def test_a_disk_without_a_boot_partition_is_refused_in_one_sentence(cli, publish_env, tmp_path):
    image = tmp_path / "openEuler-24.03-LTS-SP1-x86_64.raw"
    make_raw(image)  # an MBR signature over random bytes: a table with no bootable partition
    with open(image, "r+b") as handle:
        handle.seek(446)
        handle.write(bytes(64))
    result = publish_image(cli, image)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "is proven to boot in no mode" in line
    assert publish_env.registered == []


def record_with_boot_test(tmp_path, modes: dict[str, str], layout="hybrid"):
    build = tmp_path / "build" / "b1"
    build.mkdir(parents=True)
    raw = disk(build / "disk.raw", hybrid_head if layout == "hybrid" else mbr_head)
    record = BuildRecord(build_id="b1b1b1b1b1b1b1b1", profile="minimal", release="24.03-LTS-SP1", arch="x86_64",
                         base=BaseImage(url="https://example.invalid/base.qcow2.xz", sha256="0" * 64),
                         elements_hash="e" * 64, elements=["vm"], image_name="openEuler-24.03-LTS-SP1-x86_64-min-x",
                         artifacts=[Artifact(format="raw", path="disk.raw", size=IMAGE_SIZE, virtual_size=IMAGE_SIZE,
                                             sha256=sha256_file(raw))],
                         boot=BootLayout(layout=layout, modes=sorted(modes)))
    path = write_record(build, record)
    write_json_atomic(build / "boottest.json", {"build_id": record.build_id, "modes": modes,
                                                "passed": all(v == "passed" for v in modes.values())})
    return path


@pytest.mark.parametrize(("modes", "expected"), [
    ({"bios": "passed", "uefi": "passed"}, "uefi-preferred"),
    ({"bios": "passed"}, "legacy-bios"),  # a `boot: bios` build
    ({"bios": "passed", "uefi": "failed"}, "legacy-bios"),  # a hybrid disk whose UEFI boot failed
    ({"bios": "passed", "uefi": "not tried"}, "legacy-bios"),
])
def test_a_record_registers_the_modes_its_boot_test_passed(cli, publish_env, tmp_path, modes, expected):
    record = record_with_boot_test(tmp_path, modes, layout="bios" if list(modes) == ["bios"] else "hybrid")
    result = cli("publish", "--cloud", "aws", "--record", str(record), "--region", REGION, "--json")
    assert result.exit_code == 0, result.stderr
    assert registered_mode(publish_env) == expected


def test_a_record_refuses_a_mode_its_boot_test_did_not_prove(cli, publish_env, tmp_path):
    record = record_with_boot_test(tmp_path, {"bios": "passed", "uefi": "failed"})
    result = cli("publish", "--cloud", "aws", "--record", str(record), "--region", REGION, "--boot-mode", "uefi")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "--boot-mode uefi needs uefi boot proven" in line and "uefi failed" in line
    assert publish_env.registered == []
