"""tables.render: the one plain-text table behind the publish report, the release summary and the listings."""

from __future__ import annotations

import pytest

from eulerpub import tables
from eulerpub.publish.report import PublishResult, RegionResult, render_table


def test_columns_align_two_spaces_apart_without_trailing_blanks():
    text = tables.render(("NAME", "ID", "NOTE"), [("a", "ami-123", ""), ("longer-name", "x", "new")])
    assert text.splitlines() == [
        "NAME         ID       NOTE",
        "a            ami-123",
        "longer-name  x        new",
    ]


def test_a_row_of_the_wrong_length_is_a_bug_not_a_shifted_table():
    with pytest.raises(ValueError):
        tables.render(("A", "B"), [("1", "2", "3")])


def test_the_publish_report_is_one_such_table_under_its_heading():
    result = PublishResult("aws", "b-1", "img", (
        RegionResult("us-east-1", "source", "done", "ami-1", ("snap-1",), ("1111",), created=True),
        RegionResult("eu-west-1", "copy", "failed", error="boom"),
    ))
    assert render_table(result).splitlines() == [
        "img (aws, build b-1)",
        "REGION     ROLE    STATUS  IMAGE  SNAPSHOT  SHARED  NOTE",
        "us-east-1  source  done    ami-1  snap-1    1111    new",
        "eu-west-1  copy    failed  -      -         -       boom",
    ]
