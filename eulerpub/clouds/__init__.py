"""Cloud adapters: one module per cloud implementing `eulerpub.clouds.base.CloudAdapter`.

`ADAPTERS` maps a cloud name to its factory, given as "module:attribute" so that naming a cloud imports only
its SDK (and `eulerpub.publish` imports none). A factory is called with no arguments; adapters read
credentials from the cloud's standard chain and make SDK clients lazily, per region.
Tests may register a callable instead of a path.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from eulerpub.clouds.base import CloudAdapter
from eulerpub.errors import UsageError

AdapterFactory = Callable[[], CloudAdapter]

ADAPTERS: dict[str, str | AdapterFactory] = {
    "aws": "eulerpub.clouds.aws:AwsAdapter",
    "huawei": "eulerpub.clouds.huawei:HuaweiAdapter",
    "tencent": "eulerpub.clouds.tencent:TencentAdapter",
    "alibaba": "eulerpub.clouds.alibaba:AlibabaAdapter",
}


def get_adapter(cloud: str) -> CloudAdapter:
    """A fresh adapter for `cloud`; UsageError for an unknown cloud or one whose adapter is not installed."""
    try:
        factory = ADAPTERS[cloud]
    except KeyError:
        raise UsageError(f"unknown cloud {cloud!r}; choose one of {', '.join(sorted(ADAPTERS))}") from None
    if isinstance(factory, str):
        module_name, _, attribute = factory.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # the adapter exists but its SDK is missing
                raise UsageError(f"the {cloud} adapter needs the Python package {exc.name!r}; "
                                 "reinstall eulerpub with its dependencies") from None
            raise UsageError(f"publishing to {cloud} is not available in this version of eulerpub") from None
        factory = getattr(module, attribute)
    return factory()
