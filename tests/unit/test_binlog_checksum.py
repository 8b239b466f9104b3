"""Capture checks each binlog event's CRC-32 by the residue of the event and its stored
checksum together (capture/stream.py): the same verdict as comparing the two."""

from __future__ import annotations

import random
import zlib

from hotsite.replication.capture.stream import _CRC32_RESIDUE


def test_an_intact_event_has_the_residue_and_any_flipped_bit_does_not() -> None:
    rng = random.Random(7)
    for size in (0, 1, 19, 300, 9000):
        event = rng.randbytes(size)
        stored = event + zlib.crc32(event).to_bytes(4, "little")
        assert zlib.crc32(stored) == _CRC32_RESIDUE
        for _ in range(20):
            bit = rng.randrange(len(stored) * 8)
            damaged = bytearray(stored)
            damaged[bit // 8] ^= 1 << bit % 8
            assert zlib.crc32(bytes(damaged)) != _CRC32_RESIDUE
