"""The one fake GitHub: a local REST server whose every request is checked against GitHub's OpenAPI.

Tests reach it through the ``fake_github`` fixture (``tests/conftest.py``). It keeps the state
tests seed and inspect (repositories, pull requests, collaborators, comments, check runs with
their history, reactions, labels, installations and the tokens it minted, webhook deliveries),
records every call, and answers as GitHub would. Anything GitHub would refuse — an unknown
route, a body that breaks the operation's schema, a missing or wrong credential, a token used
beyond its repository or permissions — is recorded as a *violation*, answered with GitHub's
status, and fails the test at teardown unless the test consumes it with ``pop_violations()``.

Responses are built from the OpenAPI description's own examples with the fake's state laid
over them, and are themselves checked loosely against the response schemas (missing required
fields and nulls tolerated: the examples predate some fields).

GitHub's web sign-in (the OAuth web flow of an App), ``GET /user`` and token revocation are not in
the description; ``ops_oauth.py`` checks them against what GitHub's documentation says.
"""

from __future__ import annotations

from tests.fake_github.server import FakeGitHub
from tests.fake_github.spec import all_operation_ids, operations

__all__ = ["FakeGitHub", "all_operation_ids", "operations"]
