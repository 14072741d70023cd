"""The lookup benchmark merges each server's slices: its figures must be those of one run."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.common import histogram_percentile, merged_runs, percentile

latencies = st.lists(st.integers(min_value=1, max_value=5_000_000), min_size=1, max_size=300)


def _part(samples: list[int], seconds: float) -> dict[str, object]:
    return {
        "connections": 64,
        "requests": len(samples),
        "seconds": seconds,
        "errors": 1,
        "errors_detail": {"errors_status": 1},
        "latency_histogram": dict(Counter(samples)),
    }


@given(first=latencies, second=latencies)
def test_merged_slices_give_the_percentiles_of_every_latency_together(
    first: list[int], second: list[int]
) -> None:
    merged = merged_runs([_part(first, 2.0), _part(second, 3.0)])
    together = first + second
    for rank in (50, 95, 99):
        assert merged[f"p{rank}_ms"] == round(percentile(together, rank / 100) / 1000, 2)
    assert merged["max_ms"] == round(max(together) / 1000, 2)
    assert merged["requests"] == len(together)
    assert merged["throughput_rps"] == round(len(together) / 5.0, 1)
    assert merged["errors"] == 2
    assert merged["errors_detail"] == {"errors_status": 2}


def test_a_histogram_percentile_counts_each_value_as_often_as_recorded() -> None:
    histogram = {10: 98, 500: 1, 900: 1}
    assert histogram_percentile(histogram, 0.50) == 10
    assert histogram_percentile(histogram, 0.99) == 500
    assert histogram_percentile(histogram, 1.0) == 900


def test_the_nearest_rank_is_not_thrown_off_by_binary_fractions() -> None:
    hundred = list(range(1, 101))
    assert percentile(hundred, 0.57) == 57  # 0.57 * 100 is 56.99999999999999 in binary
    assert percentile(hundred, 0.99) == 99
    assert percentile(hundred, 0.995) == 100
