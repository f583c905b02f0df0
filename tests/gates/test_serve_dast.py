"""DAST: schemathesis fuzzes the running service from its own OpenAPI document.

A bounded run (``_EXAMPLES`` generated requests per operation, positive and negative data) against
the real service on loopback: no 5xx, every status and content type documented, every
documented response body matching its schema. The per-client limit is lifted so that the
fuzzer's own volume is not what is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.release_support import copy_project
from tests.serve_support import in_process

_EXAMPLES = 25


@pytest.fixture(scope="module")
def service_url(passed_chain: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = copy_project(passed_chain, tmp_path_factory.mktemp("dast") / "project")
    lifted = {"rate_limit.requests": 1_000_000, "rate_limit.rows": 100_000_000}
    with in_process(root, **lifted) as (url, _, _):
        yield url


@pytest.mark.slow
def test_schemathesis_finds_no_undocumented_behaviour(service_url: str) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(f"{service_url}/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/models/model:predict", "/metrics"}
    strategy = st.one_of(*(op.as_strategy() for op in operations))

    @settings(
        max_examples=_EXAMPLES * len(operations),
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=service_url, checks=checks, timeout=30)

    fuzz()
