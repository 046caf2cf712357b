"""
Sliding windows: count- and time-based tallies, and their plain-data form.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery.errors import ConfigurationError
from recovery.policies.windows import FAILED, SLOW, CountTally, CountWindow, TimeWindow


class TestCountWindow:
    def test_counts_until_full_then_forgets_the_oldest(self) -> None:
        """The ring keeps exactly the last `size` outcomes."""
        tally = CountWindow(3).tally()

        for code in (FAILED, 0, FAILED | SLOW):
            tally.add(code, 0.0)
        assert tally.totals(0.0) == (3, 2, 1)

        tally.add(0, 0.0)  # pushes out the first failure
        assert tally.totals(0.0) == (3, 1, 1)

    @given(st.integers(1, 20), st.lists(st.sampled_from([0, 1, 2, 3]), max_size=80))
    def test_totals_match_the_last_size_codes(
        self, size: int, codes: list[int]
    ) -> None:
        """Whatever the sequence, the totals are those of the last `size` codes."""
        tally = CountWindow(size).tally()
        for code in codes:
            tally.add(code, 0.0)

        last = codes[-size:] if codes else []
        expected = (len(last), sum(c & 1 for c in last), sum(c >> 1 for c in last))
        assert tally.totals(0.0) == expected
        assert CountTally.from_data(size, tally.to_data()).totals(0.0) == expected
        assert tally.to_data() == last

    def test_rejects_a_size_below_one(self) -> None:
        with pytest.raises(ConfigurationError, match="size"):
            CountWindow(0)


class TestTimeWindow:
    def test_buckets_expire_whole(self) -> None:
        """A bucket leaves once it is `seconds` old; the window covers 9 to 10 s."""
        tally = TimeWindow(10, buckets=10).tally()
        tally.add(FAILED, 0.5)
        tally.add(0, 1.5)

        assert tally.totals(9.9) == (2, 1, 0)
        assert tally.totals(10.0) == (1, 0, 0)
        assert tally.totals(11.0) == (0, 0, 0)

    def test_round_trips_through_plain_data(self) -> None:
        window = TimeWindow(2, buckets=4)
        tally = window.tally()
        tally.add(FAILED | SLOW, 0.1)
        tally.add(0, 0.6)

        again = type(tally).from_data(2, 4, tally.to_data())

        assert again.totals(0.7) == (2, 1, 1)

    def test_uses_whole_milliseconds_for_bucket_edges(self) -> None:
        """0.3 s lands in bucket 3 of 0.1 s buckets, as it does in the stores."""
        tally = TimeWindow(1, buckets=10).tally()
        assert tally.index(0.3) == 3
        assert tally.index(0.2994) == 2

    @pytest.mark.parametrize(
        ("seconds", "buckets", "match"),
        [(0, 10, "seconds"), (1, 0, "buckets"), (0.005, 10, "millisecond")],
    )
    def test_rejects_bad_settings(
        self, seconds: float, buckets: int, match: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=match):
            TimeWindow(seconds, buckets=buckets)


@given(
    st.lists(
        st.tuples(st.integers(0, 3000), st.sampled_from([0, 1, 2, 3])), max_size=60
    ),
    st.integers(0, 5000),
)
def test_time_tally_matches_a_naive_recount(
    steps: list[tuple[int, int]], probe_gap: int
) -> None:
    """Running totals equal a recount of every call in the last buckets."""
    window = TimeWindow(2, buckets=4)  # 500 ms buckets
    tally = window.tally()
    now_ms = 0
    calls: list[tuple[int, int]] = []
    for gap, code in steps:
        now_ms += gap
        tally.add(code, now_ms / 1000)
        calls.append((now_ms, code))

    probe = now_ms + probe_gap
    first = probe // 500 - 3
    kept = [code for at, code in calls if at // 500 >= first]
    expected = (len(kept), sum(c & 1 for c in kept), sum(c >> 1 for c in kept))
    assert tally.totals(probe / 1000) == expected
    again = type(tally).from_data(2, 4, tally.to_data())
    assert again.totals(probe / 1000) == expected
