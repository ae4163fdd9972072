"""Unlearning methods: one file each, registered by name in ``METHODS``."""

from . import ga, graddiff, idkdpo, npo, simnpo, tif
from .base import Method

METHODS: dict[str, Method] = {
    module.METHOD.name: module.METHOD for module in (tif, ga, graddiff, npo, simnpo, idkdpo)
}

__all__ = ["METHODS", "Method"]
