"""
Cutting streams into chunks: content-defined (the default) or fixed-size.

Content-defined chunking places cuts where the data itself says so, so an
insertion early in a file moves only the chunks around it: the chunks after
it are found again and deduplicated. A classic rolling hash over every byte
is far too slow in pure Python (about 10 MB/s), so cuts are found in two
stages that run mostly inside C code:

1. Each byte is mapped to 0 or 1 through a fixed table (`bytes.translate`),
   and `bytes.find` looks for a run of `_RUN` ones: a position preceded by
   `_RUN` bytes that all map to 1 is a candidate. On random data one
   position in about 30,000 is one.
2. At each candidate (at most `_PER_RUN` per run, so long uniform stretches
   cost little) the CRC-32 of the `_WINDOW` bytes before it decides: one
   candidate in 2**k is a cut, with k chosen so that chunks average about
   the requested size.

Both stages look only at the bytes just before a position, so cuts move
with the data. No cut comes within `min_size` of the previous one, and a
chunk never exceeds `max_size`. Data with few candidates (long runs of one
byte value, say) is cut at `max_size`, like a fixed-size chunker.

Both chunkers read through a caller's `read(n)` function and hold at most
one `max_size` buffer: memory depends on the chunk size, never the stream.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

__all__ = ["CdcChunker", "Chunker", "FixedChunker", "Reader"]

Reader = Callable[[int], bytes]

# Byte b maps to the low bit of SHA-256("recovery-cdc" + b): fixed forever,
# since changing it would change every cut and defeat deduplication.
_TABLE = bytes(
    hashlib.sha256(b"recovery-cdc" + bytes((b,))).digest()[0] & 1 for b in range(256)
)
_RUN = 13
_RUN_BYTES = b"\x01" * _RUN
_PER_RUN = 32
_WINDOW = 48
# Measured on random data: about one candidate per 14 kB.
_CANDIDATE_SPACING = 14_000
_SEGMENT = 128 * 1024
_READ_SIZE = 1 << 20


class Chunker(Protocol):
    """
    Splits what a reader returns into chunks, in order, losing nothing.
    """

    max_size: int

    def split(self, read: Reader) -> Iterator[bytes]:
        """
        Yield the chunks of the stream that *read* returns.
        """
        ...


class FixedChunker:
    """
    Cuts a stream every `size` bytes (the last chunk may be shorter).
    """

    def __init__(self, size: int) -> None:
        self.max_size = size

    def split(self, read: Reader) -> Iterator[bytes]:
        """
        Yield chunks of exactly `size` bytes, except the last.
        """
        while data := _read_full(read, self.max_size):
            yield data


class CdcChunker:
    """
    Cuts a stream where its content says so, about `average` bytes apart.

    Chunks are at least `average // 4` and at most `average * 4` bytes long
    (the last one may be shorter).
    """

    def __init__(self, average: int) -> None:
        self.min_size = average // 4
        self.max_size = average * 4
        wanted = (average - self.min_size) / _CANDIDATE_SPACING
        self.cut_mask = (1 << max(0, round(math.log2(max(wanted, 1.0))))) - 1

    def split(self, read: Reader) -> Iterator[bytes]:
        """
        Yield content-defined chunks; short reads do not move the cuts.
        """
        # One bytearray is refilled in place and consumed from the front
        # (which CPython does without copying), so memory stays near one
        # max_size buffer plus the chunk being handed out.
        buffer = bytearray()
        eof = False
        while True:
            while not eof and len(buffer) < self.max_size:
                more = read(min(self.max_size - len(buffer), _READ_SIZE))
                eof = not more
                buffer += more
            if not buffer:
                return

            # The buffer is full here unless the stream ended, so a cut at
            # its end is either max_size or the end of the stream.
            cut = self.find_cut(buffer) if len(buffer) > self.min_size else len(buffer)
            with memoryview(buffer) as view:
                chunk = bytes(view[:cut])
            del buffer[:cut]
            yield chunk

    def find_cut(self, data: bytes | bytearray) -> int:
        """
        Return where the chunk starting at `data[0]` ends.
        """
        end = min(len(data), self.max_size)
        position = self.min_size
        while position < end:
            segment_end = min(end, position + _SEGMENT)
            low = max(position - _RUN, 0)
            cut = _scan(data, low, segment_end, self.min_size, self.cut_mask)
            if cut:
                return cut
            position = segment_end

        return end


def _scan(
    data: bytes | bytearray, low: int, high: int, min_size: int, mask: int
) -> int:
    # Returns a cut in (low, high], or 0 when this segment has none.
    bits = data[low:high].translate(_TABLE)
    start = bits.find(_RUN_BYTES)
    while start != -1:
        first = low + start + _RUN
        zero = bits.find(b"\x00", start + _RUN)
        run_end = high if zero == -1 else low + zero
        for candidate in range(first, min(run_end, first + _PER_RUN - 1) + 1):
            if candidate < min_size:
                continue
            if not zlib.crc32(data[candidate - _WINDOW : candidate]) & mask:
                return candidate
        if zero == -1:
            return 0
        start = bits.find(_RUN_BYTES, zero)

    return 0


def _read_full(read: Reader, size: int) -> bytes:
    # Pipes and sockets return short reads; chunk boundaries must not
    # depend on them, or equal data would be cut differently.
    data = read(size)
    if len(data) >= size or not data:
        return data

    parts = [data]
    missing = size - len(data)
    while missing > 0:
        more = read(missing)
        if not more:
            break
        parts.append(more)
        missing -= len(more)

    return b"".join(parts)
