"""Offline emulators of Huawei Cloud IMS v2, Tencent Cloud CVM 2017-03-12 and Alibaba Cloud ECS 2014-05-26, spoken
to by the real SDKs."""

from .cvm import CvmEmulator
from .ecs import EcsEmulator
from .ims import ImsEmulator
from .server import Call, Fault, Faults, Timing

__all__ = ["Call", "CvmEmulator", "EcsEmulator", "Fault", "Faults", "ImsEmulator", "Timing"]
