"""Offline emulators of Huawei Cloud IMS v2 and Tencent Cloud CVM 2017-03-12, spoken to by the real SDKs."""

from .cvm import CvmEmulator
from .ims import ImsEmulator
from .server import Call, Fault, Faults, Timing

__all__ = ["Call", "CvmEmulator", "Fault", "Faults", "ImsEmulator", "Timing"]
