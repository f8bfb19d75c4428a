"""More random version sequences against the oracle than `make test` can afford
(`make test-long`)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dbt import test_versions_ledger as versions

pytestmark = pytest.mark.long


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(min_value=1, max_value=10**6),
    changes=st.lists(versions.CHANGES, min_size=1, max_size=4),
    incremental=st.booleans(),
)
def test_many_random_version_sequences(pipeline, seed, changes, incremental):
    versions.test_random_version_sequences_match_the_oracle.hypothesis.inner_test(
        pipeline, seed, changes, incremental
    )
