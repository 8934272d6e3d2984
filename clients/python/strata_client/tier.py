"""Tier: where a block's copy lives, with the numbers of cachenode.proto's enum Tier."""

from __future__ import annotations

import enum

__all__ = ["Tier"]


class Tier(enum.IntEnum):
    UNSPECIFIED = 0  # a miss, or "no tier"
    HBM = 1
    DRAM = 2
    SSD = 3

    @classmethod
    def _missing_(cls, value: object) -> "Tier":
        # A newer server may name a tier this client does not know yet: treat it as unspecified
        # rather than failing the whole call.
        return cls.UNSPECIFIED
