"""The listing commands and the publish plan print one kind of table (eulerpub/tables.py): a header row, each
column as wide as its widest cell and two spaces apart, no trailing blanks, each value as it is (no console
markup); `--json` is the same data for machines."""

from __future__ import annotations

import json
import re

from eulerpub import catalog
from eulerpub.cli.publish import plan_table
from eulerpub.publish.plan import PlannedStep


def columns(lines: list[str]) -> list[int]:
    """Where each column of the header starts: the offsets every row's cells start at."""
    return [match.start() for match in re.finditer(r"(?:^|(?<=  ))\S", lines[0])]


def assert_one_table(text: str, header: list[str]) -> list[list[str]]:
    lines = text.splitlines()
    assert lines[0].split() == header
    starts = columns(lines)
    assert len(starts) == len(header)
    cells = []
    for line in lines[1:]:
        assert line == line.rstrip()
        row = [line[a:b].rstrip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        assert all(line[start - 2:start] == "  " for start in starts[1:]), line  # two spaces before each column
        cells.append(row)
    for i, start in enumerate(starts[1:]):  # no column wider than its widest cell (header included)
        assert start - starts[i] - 2 == max(len(row[i]) for row in [header, *cells]), header[i]
    return cells


def test_catalog_list_is_one_table_of_every_image(cli):
    result = cli("catalog", "list")
    assert result.exit_code == 0 and result.stderr == ""
    rows = assert_one_table(result.stdout, ["RELEASE", "ARCH", "URL"])
    expected = catalog.catalog(catalog.mirror_root(None))
    assert rows == [[s.release, s.arch, s.url] for s in expected]
    data = json.loads(cli("catalog", "list", "--json").stdout)
    assert [(i["release"], i["arch"], i["url"]) for i in data["images"]] == [tuple(r) for r in rows]


def test_profiles_list_is_one_table_with_descriptions_as_written(cli, tmp_path):
    (tmp_path / "lab.yaml").write_text("extends: minimal\ndescription: |\n  Lab image [bold]not markup[/bold]\n"
                                       "  on two lines\n")
    result = cli("profiles", "list", "--profiles-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    rows = assert_one_table(result.stdout, ["NAME", "DESCRIPTION"])
    assert ["lab", "Lab image [bold]not markup[/bold] on two lines"] in rows
    assert {"minimal", "hpc"} <= {name for name, _ in rows}
    listed = json.loads(cli("profiles", "list", "--profiles-dir", tmp_path, "--json").stdout)
    assert [row["name"] for row in listed] == [name for name, _ in rows]


def test_the_publish_plan_is_one_table_under_its_heading():
    steps = [PlannedStep("cn-hangzhou-finance", "upload", "disk.raw (2 GiB) to bucket b", done=True),
             PlannedStep("cn-hangzhou-finance", "import", "as openEuler-x", done=False),
             PlannedStep("eu-west-1", "copy", "from cn-hangzhou-finance", done=False)]
    lines = plan_table(steps).splitlines()
    assert all(line.startswith("  ") for line in lines)  # under the plan's heading and boot lines
    rows = assert_one_table("\n".join(line[2:] for line in lines), ["STATE", "REGION", "STEP", "DETAIL"])
    assert rows == [["done", "cn-hangzhou-finance", "upload", "disk.raw (2 GiB) to bucket b"],
                    ["todo", "cn-hangzhou-finance", "import", "as openEuler-x"],
                    ["todo", "eu-west-1", "copy", "from cn-hangzhou-finance"]]
