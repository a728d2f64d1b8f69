"""`eulerpub images latest --cloud aws` against moto: DescribeImages by eulerpub's tags, newest first."""

from __future__ import annotations

from tests.integration.images_latest import scenario


def test_images_latest_on_aws(cli, publish_env, tmp_path):
    scenario(cli, "aws", "us-east-1", tmp_path / "disks", fmt="raw", extra=("--upload", "ebs"))
