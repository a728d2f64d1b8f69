"""The uploaders' pure parts: part sizes, hole-aware block lists, resume ranges, the LINEAR checksum, object tags,
partitions."""

from __future__ import annotations

import base64
import hashlib
import math

import pytest

from eulerpub.clouds.ebs import BLOCK_SIZE, data_blocks, from_ranges, linear_checksum, to_ranges
from eulerpub.clouds.objectstore import MAX_PARTS, MIN_PART_SIZE, MiB, choose_part_size, part_count
from eulerpub.errors import UsageError


@pytest.mark.parametrize("size", [0, 1, 5 * MiB, 100 * MiB, 80 * 1024 * MiB, 1024 * 1024 * MiB])
def test_part_size_fits_ten_thousand_parts_in_whole_mib(size):
    part = choose_part_size(size)
    assert part >= MIN_PART_SIZE and part % MiB == 0
    assert part_count(size, part) <= MAX_PARTS
    if size <= 8 * MiB * MAX_PARTS:
        assert part == 8 * MiB, "small files keep the default part size"


def test_a_file_too_large_for_any_part_size_is_refused():
    with pytest.raises(UsageError, match="does not fit"):
        choose_part_size(5 * 1024 * MiB * MAX_PARTS + 1)


def test_ranges_round_trip_and_stay_compact():
    indexes = {0, 1, 2, 3, 7, 9, 10, 100}
    assert to_ranges(indexes) == [[0, 4], [7, 8], [9, 11], [100, 101]]
    assert from_ranges(to_ranges(indexes)) == indexes
    assert to_ranges(range(100_000)) == [[0, 100_000]]


def test_linear_checksum_is_sha256_of_digests_in_index_order():
    digests = {5: hashlib.sha256(b"b").digest(), 1: hashlib.sha256(b"a").digest()}
    expected = base64.b64encode(hashlib.sha256(digests[1] + digests[5]).digest()).decode()
    assert linear_checksum(digests) == expected


def test_data_blocks_skips_holes_without_reading_them(tmp_path):
    path = tmp_path / "sparse.raw"
    size = 64 * BLOCK_SIZE
    with open(path, "wb") as handle:
        handle.truncate(size)
        handle.seek(3 * BLOCK_SIZE + 10)
        handle.write(b"x" * 100)
        handle.seek(40 * BLOCK_SIZE - 5)
        handle.write(b"y" * 10)  # straddles blocks 39 and 40
    with open(path, "rb") as handle:
        blocks = list(data_blocks(handle.fileno(), size))
    # The filesystem may report data in larger extents than written, but never misses data and never repeats.
    assert {3, 39, 40} <= set(blocks)
    assert len(blocks) == len(set(blocks)) and blocks == sorted(blocks)
    assert len(blocks) < 64, "holes are skipped"
    assert max(blocks) < math.ceil(size / BLOCK_SIZE)


def test_object_tags_put_eulerpubs_own_first_and_refuse_what_s3_cannot_hold():
    from eulerpub.clouds.base import BuildIdentity
    from eulerpub.clouds.objectstore import MAX_OBJECT_TAGS, object_tags

    identity = BuildIdentity("b1", "hpc", "24.03-LTS-SP1", "x86_64")
    tags = object_tags(identity.tags({"team": "hpc", "cost": "42"}))
    assert list(tags)[:5] == ["eulerpub:build-id", "eulerpub:profile", "eulerpub:release", "eulerpub:arch",
                              "managed-by"]
    assert list(tags)[5:] == ["team", "cost"]
    assert len(object_tags(identity.tags({f"k{i}": "v" for i in range(MAX_OBJECT_TAGS - 5)}))) == MAX_OBJECT_TAGS
    with pytest.raises(UsageError, match="S3 keeps at most 10 tags on an object and eulerpub's own take 5, so the "
                                         "6 user tags"):
        object_tags(identity.tags({f"k{i}": "v" for i in range(6)}))


@pytest.mark.parametrize(("region", "partition", "domain"), [("us-east-1", "aws", ".amazonaws.com"),
                                                             ("cn-north-1", "aws-cn", ".amazonaws.com.cn"),
                                                             ("us-gov-west-1", "aws-us-gov", ".amazonaws.com")])
def test_arns_and_endpoints_follow_the_regions_partition(region, partition, domain):
    from eulerpub.clouds import aws, aws_vmimport, boto

    assert aws.partition(region) == partition
    resources = aws_vmimport.role_policy("images", aws.partition(region))["Statement"][0]["Resource"]
    assert resources == [f"arn:{partition}:s3:::images", f"arn:{partition}:s3:::images/*"]
    endpoint = boto.make_client("ec2", region).meta.endpoint_url  # no AWS_ENDPOINT_URL here: botocore's own
    assert endpoint == f"https://ec2.{region}{domain}"
