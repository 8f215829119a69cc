"""The shortcuts of the no-op apply's path (history rows built by position, stamps written
with timespec) say what the longer spelling said."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from sqlstage.history import _READ, AppliedMigration
from sqlstage.status_file import utc_stamp


def test_history_columns_are_read_in_the_field_order_of_a_row() -> None:
    assert list(_READ) == [field.name for field in dataclasses.fields(AppliedMigration)]


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=-23 * 60, max_value=23 * 60),
)
def test_utc_stamp_is_the_second_it_fell_in(moment: datetime, offset_minutes: int) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    expected = aware.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    assert utc_stamp(aware) == expected
