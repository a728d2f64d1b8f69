"""Release integration tests: moto's server as AWS and as COS, the CVM emulator as Tencent, synthetic builds."""

from __future__ import annotations




