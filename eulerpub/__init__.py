"""eulerpub: build, verify and publish openEuler cloud images."""

__version__ = "0.1.0"
