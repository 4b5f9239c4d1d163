"""API fuzzing of the HTTP app over its own OpenAPI schema (schemathesis + hypothesis).

schemathesis generates requests from ``/openapi.json`` (valid and invalid bodies,
headers, query strings) and checks each answer: never a 5xx, a status the schema
documents for that route, the documented content type, and a body matching the
documented schema. Bounded (``max_examples`` per route) so the run takes well under a
minute.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)
from schemathesis.checks import not_a_server_error

from custscore.config import ServeConfig
from custscore.serving.http import create_app
from custscore.serving.model_holder import LoadedModel, load_model
from custscore.training.tracking import use_tracking

# One worker runs this module (--dist loadgroup in pyproject.toml): one loaded model and app schema.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("http_fuzz")]

URI = "models:/custscore-test@champion"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def model(trained) -> LoadedModel:
    use_tracking(trained["config"].tracking_uri)
    return load_model(URI)


@pytest.fixture(scope="module")
def api_schema(model, cdnow_sample_csv, tmp_path_factory):
    """The app with every route: admin reload and the customer page's JSON routes (a scored CDNOW sample)."""
    from custscore.config import ScoreConfig
    from custscore.serving.batch import score_file
    from custscore.serving.customer_table import load_customer_table
    scores = tmp_path_factory.mktemp("fuzz") / "scores.csv"
    score_file(URI, cdnow_sample_csv, scores, ScoreConfig(as_of="1997-09-30"))
    customers = load_customer_table(scores, cdnow_sample_csv)
    app = create_app(URI, ServeConfig(admin_token="fuzz-admin-token-0123456789"), model=model, customers=customers)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_every_answer_is_documented_and_no_5xx(case):
    case.call_and_validate(checks=CHECKS)
