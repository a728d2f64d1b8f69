"""Release integration tests: moto's server as AWS and as COS, the CVM emulator as Tencent, synthetic builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import fixtures_moto

moto_server = fixtures_moto.moto_server
moto = fixtures_moto.moto
aws_env = fixtures_moto.aws_env


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)
