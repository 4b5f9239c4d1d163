"""Property-based checks (hypothesis) of the input layer and the returns policy.

Truth is computed independently with plain Python over the generated rows.
"""
from __future__ import annotations

from collections import defaultdict

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custscore.errors import CustscoreError
from custscore.features.io import normalise_transactions
from custscore.features.periods import merge_periods
from custscore.features.rfm import rfm_summary

ids = st.sampled_from(["00001", "0001", "1", "007", "A-9", "x"])
days = st.integers(min_value=0, max_value=60)
amounts = st.one_of(st.floats(min_value=-50, max_value=200, allow_nan=False).map(lambda v: round(v, 2)),
                    st.just(0.0))
rows = st.lists(st.tuples(ids, days, st.integers(0, 23), amounts), min_size=1, max_size=40)

CUTOFF = pd.Timestamp("2020-03-01")


def _frame(data):
    return pd.DataFrame({
        "customer_id": [c for c, _, _, _ in data],
        "date": [(pd.Timestamp("2020-01-01") + pd.Timedelta(days=d, hours=h)).isoformat() for _, d, h, _ in data],
        "amount": [a for _, _, _, a in data],
    })


@settings(max_examples=150, deadline=None)
@given(rows)
def test_rfm_matches_a_plain_python_recount(data):
    net = defaultdict(float)
    for customer, day, _, amount in data:
        net[(customer, day)] += amount
    purchase_days = defaultdict(list)
    for (customer, day), total in net.items():
        if total >= 0:  # return-only days are not purchases
            purchase_days[customer].append((day, total))
    rfm = rfm_summary(merge_periods(normalise_transactions(_frame(data))), CUTOFF)
    assert sorted(rfm.index) == sorted(purchase_days)  # ids kept verbatim: "00001" != "0001" != "1"
    for customer, purchases in purchase_days.items():
        purchases.sort()
        row = rfm.loc[customer]
        assert row["frequency"] == len(purchases) - 1
        assert row["recency_days"] == purchases[-1][0] - purchases[0][0]
        assert row["T_days"] == (CUTOFF - pd.Timestamp("2020-01-01")).days - purchases[0][0]
        repeat = [total for _, total in purchases[1:]]
        expected = sum(repeat) / len(repeat) if repeat else 0.0
        assert row["monetary_value"] == pytest.approx(expected, abs=1e-9)
        assert row["monetary_value"] >= 0  # never a net-negative mean spend


@settings(max_examples=60, deadline=None)
@given(rows, st.randoms(use_true_random=False))
def test_row_order_does_not_matter(data, rng):
    shuffled = list(data)
    rng.shuffle(shuffled)
    a = rfm_summary(merge_periods(normalise_transactions(_frame(data))), CUTOFF)
    b = rfm_summary(merge_periods(normalise_transactions(_frame(shuffled))), CUTOFF)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=12).filter(lambda t: _not_a_number(t)), st.integers(0, 5))
def test_any_non_numeric_amount_is_named(garbage, position):
    frame = pd.DataFrame({"customer_id": ["a"] * 6, "date": ["2020-01-01"] * 6, "amount": ["1.5"] * 6})
    frame.loc[position, "amount"] = garbage
    with pytest.raises(CustscoreError) as info:
        normalise_transactions(frame)
    message = str(info.value)
    assert f"row {position + 1}: column 'amount'" in message and "\n" not in message


def _not_a_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return True
    return value != value or value in (float("inf"), float("-inf"))
