"""What each cloud accepts as input, as plain data: region names, image names, architectures, share targets.

Consulted at plan time (publish/plan.py, release/config.py), before any request, so a name a cloud would
refuse after a 20-minute upload is refused at once, in `--dry-run` too. The adapters' own checks remain,
against the live cloud; these are the offline ones. Sources:

- AWS: EC2 API reference, RegisterImage/CopyImage `Name` ("3-128 alphanumeric characters, parentheses
  (()), square brackets ([]), spaces ( ), periods (.), slashes (/), dashes (-), single quotes ('),
  at-signs (@), or underscores(_)"); account ids are 12 digits (IAM "AWS account identifiers").
- Huawei Cloud: IMS API reference, CreateImage `name` (1-128 characters: letters, digits, Chinese
  characters, spaces, '_', '-', '.'; the IMS emulator's IMG.0002/IMG.0003 rules); project ids are 32
  lower-case hex digits (IAM "Obtaining a Project ID").
- Tencent Cloud: CVM ImportImage `ImageName` ("不得超过60个字符", tencentcloud-sdk-python cvm v20170312
  models.py); account ids (UIN) are numbers.
- Alibaba Cloud: ECS ImportImage/CopyImage `ImageName` ("2 to 128 characters ... must start with a letter or a
  Chinese character ... can contain digits, periods (.), colons (:), underscores (_), or hyphens (-)",
  alibabacloud-ecs20140526 7.11.8 `ImportImageRequest`); region ids as DescribeRegions names them (cn-hangzhou,
  ap-southeast-1); `Architecture` x86_64 or arm64 (the same model); account ids (UID) are numbers
  (`ModifyImageSharePermissionRequest.AddAccount`: "the Alibaba Cloud account ID").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from eulerpub.errors import UsageError, quote


@dataclass(frozen=True)
class CloudRules:
    title: str
    region: re.Pattern[str]
    region_examples: str
    name_chars: re.Pattern[str]  # one allowed character
    name_chars_text: str
    name_min: int
    name_max: int
    arches: tuple[str, ...]
    share: re.Pattern[str]
    share_text: str


RULES: dict[str, CloudRules] = {
    "aws": CloudRules(
        title="AWS",
        region=re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$"),
        region_examples="us-east-1, eu-west-1",
        name_chars=re.compile(r"[A-Za-z0-9()\[\] ./'@_-]"),
        name_chars_text="letters, digits, spaces and ( ) [ ] . / - ' @ _",
        name_min=3, name_max=128,
        arches=("x86_64", "aarch64"),
        share=re.compile(r"^\d{12}$"),
        share_text="a 12-digit AWS account id",
    ),
    "huawei": CloudRules(
        title="Huawei Cloud",
        region=re.compile(r"^[a-z]{2}-[a-z]+-\d{1,2}$"),
        region_examples="cn-north-4, ap-southeast-1",
        name_chars=re.compile(r"[0-9A-Za-z\u4e00-\u9fa5_. -]"),
        name_chars_text="letters, digits, Chinese characters, spaces and _ - .",
        name_min=1, name_max=128,
        arches=("x86_64", "aarch64"),
        share=re.compile(r"^([a-z]{2}-[a-z]+-\d{1,2}:)?[0-9a-f]{32}$"),
        share_text="a 32-hex-digit project id, or REGION:PROJECT_ID",
    ),
    "tencent": CloudRules(
        title="Tencent Cloud",
        region=re.compile(r"^[a-z]{2}-[a-z]+(-[a-z]+)?$"),
        region_examples="ap-guangzhou, na-siliconvalley",
        name_chars=re.compile(r"[^\x00-\x1f\x7f-\x9f]"),  # CVM documents only the length; never control chars
        name_chars_text="printable characters",
        name_min=1, name_max=60,
        arches=("x86_64", "aarch64"),
        share=re.compile(r"^\d{5,20}$"),
        share_text="a numeric Tencent Cloud account id",
    ),    "alibaba": CloudRules(
        title="Alibaba Cloud",
        region=re.compile(r"^[a-z]{2}-[a-z]+(-\d{1,2})?$"),
        region_examples="cn-hangzhou, ap-southeast-1",
        name_chars=re.compile(r"[0-9A-Za-z\u4e00-\u9fa5.:_-]"),  # and the first one a letter (the adapter checks)
        name_chars_text="letters, digits, Chinese characters and . : _ -",
        name_min=2, name_max=128,
        arches=("x86_64", "aarch64"),
        share=re.compile(r"^\d{10,20}$"),
        share_text="a numeric Alibaba Cloud account id",
    ),
}


def rules(cloud: str) -> CloudRules:
    try:
        return RULES[cloud]
    except KeyError:
        raise UsageError(f"unknown cloud {quote(cloud)}; choose one of {', '.join(RULES)}") from None


def check_region(cloud: str, region: str, *, what: str = "region") -> None:
    r = rules(cloud)
    if not isinstance(region, str) or not r.region.match(region):
        raise UsageError(f"{what} {quote(region)} is not a region name on {r.title} (e.g. {r.region_examples})")


def check_image_name(cloud: str, name: str) -> None:
    r = rules(cloud)
    if not r.name_min <= len(name) <= r.name_max:
        raise UsageError(f"image name {quote(name)} is {len(name)} characters; {r.title} allows "
                         f"{r.name_min}-{r.name_max}: pass a shorter --name or change the name template")
    bad = next((ch for ch in name if not r.name_chars.fullmatch(ch)), None)
    if bad is not None:
        raise UsageError(f"image name {quote(name)} has {bad!r}, which {r.title} does not allow in image names "
                         f"({r.name_chars_text})")


def check_arch(cloud: str, arch: str) -> None:
    r = rules(cloud)
    if arch not in r.arches:
        raise UsageError(f"{r.title} has no {arch} instances; publish {' or '.join(r.arches)} images")


def check_share(cloud: str, target: str) -> None:
    r = rules(cloud)
    if not r.share.match(target):
        raise UsageError(f"--share {quote(target)}: expected {r.share_text}")


def settings_problem(cloud: str, prefix: str, *, regions: Sequence[str] = (), copy_to: Sequence[str] = (),
                     share: Sequence[str] = ()) -> str | None:
    """The first problem in a settings file's regions/copy_to/share lists for `cloud`, named by key path."""
    checks = [*((f"{prefix}.regions[{i}]:", check_region, v) for i, v in enumerate(regions)),
              *((f"{prefix}.copy_to[{i}]:", check_region, v) for i, v in enumerate(copy_to)),
              *((f"{prefix}.share[{i}]:", check_share, v) for i, v in enumerate(share))]
    for where, check, value in checks:
        try:
            if check is check_region:
                check_region(cloud, value, what=where)
            else:
                check_share(cloud, value)
        except UsageError as exc:
            return exc.message if check is check_region else f"{where} {exc.message.removeprefix('--share ')}"
    return None
