"""Uploads against the local moto server: eulerpub's S3 uploader vs boto3's upload_file, and EBS bytes sent.

Prints ratios; asserts correctness only, never timing (the machine decides the numbers). `aws_env` is the
moto fixture from tests/fixtures_moto.py, loaded by tests/conftest.py.
"""

from __future__ import annotations

import random
import time

import boto3

from eulerpub.clouds import objectstore
from eulerpub.clouds.base import Checkpoint
from eulerpub.clouds.boto import make_client
from eulerpub.clouds.ebs import BLOCK_SIZE, EbsUploader
from eulerpub.manifest import sha256_file

MiB = 1024 * 1024
S3_FILE = 128 * MiB  # random bytes: incompressible, no shortcuts for either uploader
SPARSE_SIZE = 2048 * MiB  # a 2 GiB disk ...
SPARSE_DATA = ((0, 3 * MiB), (100 * MiB, 40 * MiB), (1500 * MiB, 5 * MiB + 123))  # ... with ~48 MiB of data
ROUNDS = 2  # best of two: the first run of either pays for warming moto's backends


def timed(fn):
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def test_s3_uploader_vs_boto3_upload_file(aws_env, tmp_path):
    path = tmp_path / "disk.raw"
    path.write_bytes(random.Random(1).randbytes(S3_FILE))
    sha = sha256_file(path)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="bench")
    settings = objectstore.StoreSettings(cloud="aws", region="us-east-1")
    client = objectstore.make_store_client(settings)
    runs = iter(range(100))

    def ours():
        objectstore.upload_file(client, settings, "bench", f"ours-{next(runs)}", path, size=S3_FILE, sha256=sha,
                                checkpoint=Checkpoint(), progress=lambda n: None)

    def theirs():
        s3.upload_file(str(path), "bench", f"boto3-{next(runs)}")

    ours_s, theirs_s = timed(ours), timed(theirs)
    for key in ("ours-0", "boto3-2"):
        assert s3.head_object(Bucket="bench", Key=key)["ContentLength"] == S3_FILE
    print(f"\nS3 upload of {S3_FILE // MiB} MiB to moto: eulerpub {ours_s:.2f}s ({S3_FILE / MiB / ours_s:.0f} MiB/s), "
          f"boto3 upload_file defaults {theirs_s:.2f}s ({S3_FILE / MiB / theirs_s:.0f} MiB/s); "
          f"ratio boto3/eulerpub time = {theirs_s / ours_s:.2f} (eulerpub also sends a SHA-256 per part)")


def test_ebs_bytes_sent_vs_image_size_for_a_sparse_image(aws_env, tmp_path):
    path = tmp_path / "sparse.raw"
    rng = random.Random(2)
    with open(path, "wb") as handle:
        handle.truncate(SPARSE_SIZE)
        for offset, length in SPARSE_DATA:
            handle.seek(offset)
            handle.write(rng.randbytes(length))
    uploader = EbsUploader(make_client("ebs", "us-east-1", pool_size=32), make_client("ec2", "us-east-1"),
                           "us-east-1", path, volume_size=SPARSE_SIZE, token_base="bench", tags={},
                           description="bench", checkpoint=Checkpoint(), progress=lambda n: None)
    start = time.perf_counter()
    result = uploader.run()
    elapsed = time.perf_counter() - start
    data = sum(length for _, length in SPARSE_DATA)
    assert result.sent_bytes == result.blocks * BLOCK_SIZE
    assert data <= result.sent_bytes <= data + len(SPARSE_DATA) * 2 * BLOCK_SIZE
    print(f"\nEBS direct, {SPARSE_SIZE // MiB} MiB sparse image with {data / MiB:.1f} MiB of data: sent "
          f"{result.sent_bytes / MiB:.1f} MiB in {result.blocks} blocks, {elapsed:.2f}s; bytes sent / image size = "
          f"{result.sent_bytes / SPARSE_SIZE:.4f}")
