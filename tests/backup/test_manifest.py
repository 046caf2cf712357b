"""
Manifests read back exactly as written, and refuse any change.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.backup import CorruptDataError, Entry, EntryType, Manifest, Snapshot

digests = st.text("0123456789abcdef", min_size=64, max_size=64)
names = st.text(st.sampled_from("ab.-_ é名\udce9\n"), min_size=1, max_size=8)
paths = st.lists(names, min_size=1, max_size=4).map("/".join)
optional_ints = st.none() | st.integers(0, 2**40)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    kind = draw(st.sampled_from(EntryType))
    is_file = kind is EntryType.FILE
    return Entry(
        path=draw(paths),
        type=kind,
        mode=draw(st.integers(0, 0o7777)),
        mtime_ns=draw(st.integers(-(2**62), 2**62)),
        size=draw(st.integers(0, 2**50)) if is_file else 0,
        digest=draw(digests) if is_file else None,
        chunks=tuple(draw(st.lists(digests, max_size=4))) if is_file else (),
        target=draw(paths) if kind is EntryType.SYMLINK else None,
        inode=draw(optional_ints),
        uid=draw(optional_ints),
        gid=draw(optional_ints),
        captured=draw(st.none() | st.just("sqlite")),
    )


snapshots = st.builds(
    Snapshot,
    id=st.text("0123456789abcdef", min_size=16, max_size=16),
    series=st.text(max_size=20),
    created_at=st.floats(0, 4e9, allow_nan=False),
    host=st.text(max_size=10),
    source=st.text(max_size=20),
    tags=st.lists(st.text(max_size=8), max_size=3).map(tuple),
    parent=st.none() | st.text("0123456789abcdef", min_size=16, max_size=16),
    files=st.integers(0, 10**6),
    dirs=st.integers(0, 10**6),
    size=st.integers(0, 2**50),
)


class TestRoundTrip:
    @settings(max_examples=60, deadline=None)
    @given(snapshots, st.lists(entries(), max_size=4))
    def test_manifest_reads_back_exactly(
        self, snapshot: Snapshot, items: list[Entry]
    ) -> None:
        manifest = Manifest(snapshot, tuple(items))

        assert Manifest.from_bytes(manifest.to_bytes()) == manifest

    def test_surrogate_escaped_names_survive(self) -> None:
        name = b"caf\xe9".decode("utf-8", "surrogateescape")
        entry = Entry(path=name, type=EntryType.DIR, mode=0o755, mtime_ns=0)
        manifest = Manifest(
            Snapshot(id="0" * 16, series="s", created_at=0.0, host="h", source="/"),
            (entry,),
        )

        restored = Manifest.from_bytes(manifest.to_bytes())

        assert restored.entries[0].path.encode("utf-8", "surrogateescape") == b"caf\xe9"


class TestTampering:
    def manifest(self) -> Manifest:
        entry = Entry(
            path="f",
            type=EntryType.FILE,
            mode=0o644,
            mtime_ns=1,
            size=1,
            digest="a" * 64,
            chunks=("a" * 64,),
        )
        return Manifest(
            Snapshot(id="0" * 16, series="s", created_at=1.0, host="h", source="/"),
            (entry,),
        )

    def test_changed_field_is_refused(self) -> None:
        raw = json.loads(self.manifest().to_bytes())
        raw["entries"][0]["path"] = "../f"

        with pytest.raises(CorruptDataError, match="digest"):
            Manifest.from_bytes(json.dumps(raw).encode(), name="x")

    @pytest.mark.parametrize("data", [b"", b"[]", b"{", b'{"format": 99}', b"\xff\xfe"])
    def test_garbage_is_refused(self, data: bytes) -> None:
        with pytest.raises(CorruptDataError) as caught:
            Manifest.from_bytes(data, name="snap1")

        assert caught.value.kind == "manifest"
        assert caught.value.name == "snap1"

    def test_wrong_types_are_refused_even_with_a_valid_digest(self) -> None:
        body = self.manifest().body()
        body["entries"][0]["mode"] = "rwx"  # type: ignore[index]
        import hashlib

        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        body["digest"] = hashlib.sha256(canonical).hexdigest()

        with pytest.raises(CorruptDataError, match="mode"):
            Manifest.from_bytes(json.dumps(body).encode())
