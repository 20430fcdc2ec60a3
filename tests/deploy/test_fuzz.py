"""`make fuzz` names every finding (operation, check, how to reproduce) from schemathesis' report."""

from __future__ import annotations

import pytest

from deploy.fuzz import failures_of

pytestmark = pytest.mark.db_independent

REPORT = """\
 ❌  Fuzzing (in 72.14s)

=================================== FAILURES ===================================
_____________________ GET /v1/accounts/{account_id}/usage ______________________
1. Test Case ID: IygF3y

- ST101 Server error

- ST103 Undocumented status code

    Received: 500
    Documented: 200, 401, 403, 422

Reproduce with:

    curl -X GET -H 'Authorization: [Filtered]' 'http://127.0.0.1:1/v1/accounts/acme-corp/usage?to=0001-01-01'

________________________________ Stateful tests ________________________________
1. Test Case ID: Mewrgo

- ST302 Created resource not found

=================================== SUMMARY ====================================

Reports:
  - JUnit: /tmp/r/junit.xml
"""


def test_each_failure_is_named_with_its_operation_and_reproduction() -> None:
    assert failures_of(REPORT) == [
        "GET /v1/accounts/{account_id}/usage: ST101 Server error",
        "GET /v1/accounts/{account_id}/usage: ST103 Undocumented status code",
        "GET /v1/accounts/{account_id}/usage: reproduce: curl -X GET -H 'Authorization: [Filtered]' "
        "'http://127.0.0.1:1/v1/accounts/acme-corp/usage?to=0001-01-01'",
        "Stateful tests: ST302 Created resource not found",
    ]
    assert failures_of("Test cases:\n  5448 generated, 5448 passed\n") == []
