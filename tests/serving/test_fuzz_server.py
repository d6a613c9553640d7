"""schemathesis against a real server from its own OpenAPI description.

No generated request may get a 5xx, every 4xx is a JSON error naming the problem, and
each answer keeps to the statuses and content types the description promises.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance
from tests.conftest import copy_with_registry
from tests.serving.conftest import TOKEN

from driftloop.serving.server import BackgroundServer, build_context

MODEL = "shop"  # the small project's model name
EXAMPLES_PER_OPERATION = 12  # x 2 modes x 18 operations: ~430 requests, about 10 s


@pytest.fixture(scope="module")
def fuzz_server(
    two_versions: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackgroundServer]:
    """A private registry (the fuzzer may promote and roll back): v1 champion, v2 unaliased."""
    project = copy_with_registry(two_versions, tmp_path_factory.mktemp("fuzz") / "shop")
    with BackgroundServer(build_context(project, admin_token=TOKEN)) as server:
        yield server


def error_names_the_problem(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx answer is ``{"error": message}`` with a message that says what is wrong."""
    if not 400 <= response.status_code < 500:
        return None
    doc = response.json()
    message = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(message, str) or len(message) < 10:
        raise AssertionError(f"{case.method} {case.path}: 4xx without an error message: {doc!r}")
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    error_names_the_problem,
]


def test_openapi_lists_exactly_the_served_routes(fuzz_server: BackgroundServer) -> None:
    from starlette.routing import Route

    from driftloop.serving.app import create_app

    doc = httpx.get(f"{fuzz_server.url}/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = {
        (m, r.path)
        for r in create_app(fuzz_server.ctx).routes
        if isinstance(r, Route) and r.path != "/openapi.json"
        for m in (r.methods or ()) - {"HEAD"}
    }
    assert documented == served


def test_unknown_paths_and_methods_answer_in_the_error_shape(fuzz_server: BackgroundServer) -> None:
    with httpx.Client(base_url=fuzz_server.url) as c:
        missing = c.get("/v3/nothing")
        wrong_method = c.get("/admin/reload")
    assert missing.status_code == 404 and "GET /openapi.json lists" in missing.json()["error"]
    assert wrong_method.status_code == 405 and "GET /admin/reload" in wrong_method.json()["error"]


def fuzz(
    operation: Any, mode: GenerationMode, url: str, headers: dict[str, str], statuses: set[int]
) -> int:
    """Run one operation's generated cases in one mode; the number of exchanges made."""
    made = 0
    # Inference bodies are what matters there: a random model name would stop at a 404.
    fixed = {"name": MODEL} if operation.path.endswith("/infer") else None

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    def exchange(case: Any) -> None:
        nonlocal made
        response = case.call(base_url=url, headers=headers, timeout=30)
        made += 1
        statuses.add(response.status_code)
        case.validate_response(response, checks=CHECKS)

    exchange()
    return made


def test_no_generated_request_gets_a_5xx_and_every_4xx_names_the_problem(
    fuzz_server: BackgroundServer,
) -> None:
    url = fuzz_server.url
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    admin = {"Authorization": f"Bearer {TOKEN}"}
    made, failures = 0, []
    statuses: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        headers = admin if operation.path.startswith("/admin/") else {}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                seen = statuses.setdefault(operation.label, set())
                made += fuzz(operation, mode, url, headers, seen)
            except Unsatisfiable:  # nothing to make invalid: no parameters and no body
                assert mode == GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # every operation runs; all failures are reported
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    print("\n\n".join(failures))
    assert failures == []
    assert made >= 200
    # the generated bodies got past routing into the decoders, and some were served
    assert 400 in statuses["POST /v2/models/{name}/infer"]
    assert 200 in statuses["POST /v1/predict"] and 200 in statuses["POST /v1/feedback"]
