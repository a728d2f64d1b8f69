"""`eulerpub release`: the dry-run plan of the checked-in matrix, filters, and a run with fake steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eulerpub.release import wiring
from tests.unit.release_fakes import FakeSteps

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
concurrency: 2
profiles: [minimal]
releases: [24.03-LTS-SP1]
arches: [x86_64, aarch64]
clouds:
  aws: {regions: [us-east-1], copy_to: [us-west-2]}
  huawei: {regions: [cn-north-4], bucket: b}
"""


def test_dry_run_prints_the_full_plan_of_the_checked_in_matrix(cli, monkeypatch):
    monkeypatch.chdir(REPO)
    result = cli("release", "--dry-run")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    cells = int(lines[0].split()[2])
    assert cells == sum(1 for line in lines if line.startswith("    "))
    assert cells >= 12
    assert "build hpc-desktop 24.03-LTS-SP2 x86_64" in result.stdout
    assert "build hpc-desktop 24.03-LTS-SP1" not in result.stdout  # excluded in release.yaml


def test_dry_run_json_with_filters(cli):
    result = cli("release", "--config", REPO / "release.yaml", "--dry-run", "--json",
                 "--only", "profile=hpc", "--only", "cloud=aws", "--skip", "arch=aarch64")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert {(b["profile"], b["arch"]) for b in plan["builds"]} == {("hpc", "x86_64")}
    assert all([c["cloud"] for c in b["cells"]] == ["aws"] for b in plan["builds"])


@pytest.mark.parametrize(("args", "expected"), [
    (["--only", "cloud=azure"], "--only cloud=azure matches no cell"),
    (["--skip", "flavour=x"], "unknown key 'flavour'"),
    (["--config", "nope.yaml"], "nope.yaml: no such release config"),
])
def test_bad_input_is_one_line_and_exit_2(cli, args, expected):
    result = cli("release", "--config", REPO / "release.yaml", "--dry-run", *args) if "--config" not in args \
        else cli("release", "--dry-run", *args)
    assert result.exit_code == 2
    assert expected in result.stderr


def test_a_run_writes_the_index_and_fails_for_a_blocked_cell(cli, tmp_path, monkeypatch):
    (tmp_path / "release.yaml").write_text(CONFIG)
    from eulerpub.release.matrix import BuildKey

    fake = FakeSteps(failing_tests={BuildKey("minimal", "24.03-LTS-SP1", "aarch64")})
    monkeypatch.setattr(wiring, "default_steps", lambda *a, **k: fake.steps())
    monkeypatch.chdir(tmp_path)
    result = cli("release")
    assert result.exit_code == 1
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "boot test failed" in rows["minimal/24.03-LTS-SP1/aarch64/aws/us-east-1"]
    assert "cloud-init did not finish" in rows["minimal/24.03-LTS-SP1/aarch64/huawei/cn-north-4"]
    assert "2 published, 2 failed; 3 new image(s)" in result.stdout
    index = json.loads((tmp_path / "releases" / "index.json").read_text())
    arches = index["images"]["minimal"]["24.03-LTS-SP1"]
    assert set(arches) == {"x86_64"}
    assert set(arches["x86_64"]["aws"]) == {"us-east-1", "us-west-2"}
    assert "| minimal | 24.03-LTS-SP1 | x86_64 | huawei | cn-north-4 |" in \
        (tmp_path / "releases" / "README.md").read_text()

    fake.failing_tests.clear()
    again = cli("release", "--json")
    assert again.exit_code == 0, again.stdout
    cells = json.loads(again.stdout)["cells"]
    assert not any(c["built"] for c in cells)  # both builds exist from the first run
    new = {c["arch"]: [image["new"] for image in c["images"]] for c in cells if c["cloud"] == "aws"}
    assert new == {"x86_64": [False, False], "aarch64": [True, True]}
    index = json.loads((tmp_path / "releases" / "index.json").read_text())
    assert set(index["images"]["minimal"]["24.03-LTS-SP1"]) == {"x86_64", "aarch64"}


def test_merge_index_folds_parallel_jobs_and_rewrites_the_readme(cli, tmp_path):
    def job_index(name: str, cloud: str, image_id: str, created: str) -> Path:
        path = tmp_path / name / "index.json"
        path.parent.mkdir()
        entry = {"image_id": image_id, "name": "n", "created": created, "build_id": "b", "artifact_sha256": "s"}
        path.write_text(json.dumps({"schema_version": 1, "updated": created,
                                    "images": {"min": {"24.03": {"x86_64": {cloud: {"r1": entry}}}}}}))
        return path

    aws = job_index("aws", "aws", "ami-1", "2025-06-01T00:00:00Z")
    tencent = job_index("tencent", "tencent", "img-1", "2025-06-02T00:00:00Z")
    releases = tmp_path / "releases"
    result = cli("release", "--releases-dir", releases, "--merge-index", aws, "--merge-index", tencent)
    assert result.exit_code == 0, result.stderr
    assert "(updated)" in result.stdout
    index = json.loads((releases / "index.json").read_text())
    assert set(index["images"]["min"]["24.03"]["x86_64"]) == {"aws", "tencent"}
    assert "`img-1`" in (releases / "README.md").read_text()
    again = cli("release", "--releases-dir", releases, "--merge-index", aws)
    assert "(unchanged)" in again.stdout
    missing = cli("release", "--merge-index", tmp_path / "nope.json")
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_no_publish_stops_at_the_gate_and_leaves_the_index_alone(cli, tmp_path, monkeypatch):
    (tmp_path / "release.yaml").write_text(CONFIG)
    fake = FakeSteps()
    monkeypatch.setattr(wiring, "default_steps", lambda *a, **k: fake.steps())
    monkeypatch.chdir(tmp_path)
    result = cli("release", "--no-publish", "--only", "arch=x86_64")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "tested, not published" in result.stdout
    assert fake.images == {}
    assert not (tmp_path / "releases").exists()
