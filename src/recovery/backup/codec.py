"""
How chunks and manifests are framed on disk: one header byte, then data.

The header says whether the payload is stored as is (``0x00``) or
zstd-compressed (``0x01``). Data that compression does not shrink by at
least 5 % is stored as is, so already-compressed media costs nothing to
read back. zstd comes from the `zstandard` package (the ``backup`` extra),
imported on first use.
"""

from __future__ import annotations

import threading
from typing import Protocol

from .errors import CorruptDataError

__all__ = ["RAW", "ZSTD", "Codec"]

RAW = 0x00
ZSTD = 0x01

# Compressed output must be at most this share of the input to be kept.
_WORTH_IT = 0.95


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...


class _Decompressor(Protocol):
    def decompress(self, data: bytes, /, max_output_size: int = 0) -> bytes: ...


def _zstandard() -> object:
    try:
        import zstandard
    except ImportError as exc:
        raise ImportError(
            "backup compression needs the backup extra: "
            "pip install 'recovery[backup]' (or create the repository with "
            "compression_level=0)"
        ) from exc
    return zstandard


class Codec:
    """
    Frames payloads with a header byte, compressing with zstd when it helps.

    `level` 0 turns compression off; reading zstd frames still needs the
    extra. Compressors are kept per thread, as zstandard's are not
    thread-safe.
    """

    def __init__(self, level: int) -> None:
        self.level = level
        self._local = threading.local()

    def require_support(self) -> None:
        """
        Raise `ImportError`, naming the extra, if this level needs zstd and
        the `zstandard` package is missing.
        """
        if self.level > 0:
            _zstandard()

    def encode(self, data: bytes) -> bytes:
        """
        Return *data* framed, compressed when that saves at least 5 %.
        """
        header, payload = self.encode_parts(data)
        return header + payload

    def encode_parts(self, data: bytes) -> tuple[bytes, bytes]:
        """
        Return the header byte and the payload, without joining them.

        Writing the two with `os.writev` saves a copy of a large chunk.
        """
        if self.level > 0 and len(data) >= 64:
            packed = self._compressor().compress(data)
            if len(packed) <= len(data) * _WORTH_IT:
                return bytes((ZSTD,)), packed

        return bytes((RAW,)), data

    def decode(self, framed: bytes, *, name: str, kind: str, limit: int) -> bytes:
        """
        Return the payload of *framed*; raise `CorruptDataError` if malformed.

        *limit* bounds the decompressed size, so a damaged frame cannot make
        us allocate without end.
        """
        if not framed:
            raise CorruptDataError(f"{kind} {name} is empty", kind=kind, name=name)
        header, body = framed[0], framed[1:]
        if header == RAW:
            return body
        if header != ZSTD:
            raise CorruptDataError(
                f"{kind} {name} has an unknown header byte {header:#04x}",
                kind=kind,
                name=name,
            )

        try:
            zstd = _zstandard()
            size = zstd.frame_content_size(body)  # type: ignore[attr-defined]
            if size < 0 or size > limit:
                raise ValueError(f"frame declares {size} bytes, limit is {limit}")
            return self._decompressor().decompress(body, max_output_size=limit)
        except ImportError:
            raise
        except Exception as exc:
            raise CorruptDataError(
                f"{kind} {name} cannot be decompressed: {exc}", kind=kind, name=name
            ) from exc

    def _compressor(self) -> _Compressor:
        compressor: _Compressor | None = getattr(self._local, "compressor", None)
        if compressor is None:
            zstd = _zstandard()
            compressor = zstd.ZstdCompressor(level=self.level)  # type: ignore[attr-defined]
            self._local.compressor = compressor
        return compressor

    def _decompressor(self) -> _Decompressor:
        decompressor: _Decompressor | None = getattr(self._local, "decompressor", None)
        if decompressor is None:
            zstd = _zstandard()
            decompressor = zstd.ZstdDecompressor()  # type: ignore[attr-defined]
            self._local.decompressor = decompressor
        return decompressor
