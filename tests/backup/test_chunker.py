"""
Content-defined and fixed-size chunking: lossless, bounded, stable, and
resistant to shifted data.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import random
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.backup.chunker import CdcChunker, FixedChunker

AVERAGE = 64 * 1024


def split(chunker: CdcChunker | FixedChunker, data: bytes) -> list[bytes]:
    return list(chunker.split(io.BytesIO(data).read))


def trickle(data: bytes, step: int) -> Callable[[int], bytes]:
    """A reader that returns at most *step* bytes per call, like a pipe."""
    stream = io.BytesIO(data)
    return lambda size: stream.read(min(size, step))


class TestContentDefined:
    def test_cuts_are_stable(self) -> None:
        """The cut positions are part of the repository format: equal data
        must be cut the same way by every version, or dedup breaks."""
        data = random.Random(1).randbytes(1 << 20)

        ends = list(itertools.accumulate(map(len, split(CdcChunker(AVERAGE), data))))

        assert ends == [
            160162, 238594, 347837, 453376, 669816,
            707370, 794270, 979254, 1044301, 1048576,
        ]  # fmt: skip

    def test_an_insertion_moves_only_nearby_chunks(self) -> None:
        data = random.Random(2).randbytes(4 << 20)
        shifted = data[:1_000_000] + b"inserted" + data[1_000_000:]
        chunker = CdcChunker(AVERAGE)

        before = {hashlib.sha256(c).digest() for c in split(chunker, data)}
        after = [hashlib.sha256(c).digest() for c in split(chunker, shifted)]

        new = [digest for digest in after if digest not in before]
        assert len(new) <= 3
        assert len(after) > 20

    def test_fixed_chunks_lose_everything_after_an_insertion(self) -> None:
        """The reason content-defined chunking is the default."""
        data = random.Random(2).randbytes(1 << 20)
        chunker = FixedChunker(AVERAGE)

        before = {hashlib.sha256(c).digest() for c in split(chunker, data)}
        after = split(chunker, b"x" + data)

        assert not any(hashlib.sha256(c).digest() in before for c in after)

    def test_uniform_data_is_cut_at_the_maximum(self) -> None:
        chunker = CdcChunker(AVERAGE)

        sizes = [len(c) for c in split(chunker, bytes(1 << 20))]

        assert sizes == [chunker.max_size] * 4

    def test_sizes_scale_with_the_average(self) -> None:
        data = random.Random(3).randbytes(8 << 20)

        counts = {avg: len(split(CdcChunker(avg), data)) for avg in (64 << 10, 1 << 20)}

        assert 64 <= counts[64 << 10] <= 192
        assert 4 <= counts[1 << 20] <= 14

    @settings(max_examples=25, deadline=None)
    @given(st.integers(0, 600_000), st.integers(0, 2**32), st.integers(1, 100_000))
    def test_lossless_bounded_and_independent_of_read_sizes(
        self, size: int, seed: int, step: int
    ) -> None:
        data = random.Random(seed).randbytes(size)
        chunker = CdcChunker(AVERAGE)

        chunks = split(chunker, data)
        trickled = list(chunker.split(trickle(data, step)))

        assert b"".join(chunks) == data
        assert chunks == trickled
        assert all(len(c) <= chunker.max_size for c in chunks)
        assert all(len(c) >= chunker.min_size for c in chunks[:-1])


class TestFixed:
    def test_exact_sizes_even_from_short_reads(self) -> None:
        data = bytes(range(256)) * 1000

        chunks = list(FixedChunker(100_000).split(trickle(data, 7_000)))

        assert [len(c) for c in chunks] == [100_000, 100_000, 56_000]
        assert b"".join(chunks) == data

    def test_empty_stream_has_no_chunks(self) -> None:
        assert split(FixedChunker(AVERAGE), b"") == []
        assert split(CdcChunker(AVERAGE), b"") == []
