"""The admin token: needed by every admin call, never shown; the request limits come from config."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.serving.conftest import TOKEN
from tests.serving.test_server import ADMIN, feature_rows, v2_body
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.config import ProjectConfig, dump_config, load_config
from driftloop.errors import ConfigError
from driftloop.project import Project
from driftloop.serving.server import BackgroundServer, build_context

SECRET = "tok-3f9c1e77-never-print-me"
ADMIN_CALLS = [
    ("GET", "/admin/routes"),
    ("POST", "/admin/weights"),
    ("POST", "/admin/reload"),
    ("POST", "/admin/promote"),
    ("POST", "/admin/rollback"),
    ("POST", "/admin/flush"),
]


def test_config_objects_never_show_the_token() -> None:
    config = ProjectConfig.model_validate({"project": "shop", "serving": {"admin_token": SECRET}})
    shown = [
        repr(config),
        str(config),
        repr(config.serving),
        str(config.serving),
        config.model_dump_json(),
        json.dumps(config.model_dump(mode="json")),
        dump_config(config),
    ]
    assert [SECRET in text for text in shown] == [False] * len(shown)
    assert config.serving.resolved_admin_token() == SECRET


@pytest.mark.parametrize("value", ["3141592653", "[tok-3141592653]", "{tok: 3141592653}"])
def test_a_token_that_is_not_a_string_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    (tmp_path / "driftloop.yaml").write_text("project: shop\n")
    monkeypatch.setenv("DRIFTLOOP__SERVING__ADMIN_TOKEN", value)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    message = str(err.value)  # names the variable that set it, never its value
    assert (
        "serving.admin_token (set by the environment variable DRIFTLOOP__SERVING__ADMIN_TOKEN"
        in message
    )
    assert "must be a string: quote it" in message
    assert "3141592653" not in str(err.value) and err.value.__cause__ is None
    result = CliRunner().invoke(app, ["doctor", "--project", str(tmp_path)])
    assert result.exit_code == 2 and "serving.admin_token" in result.output
    assert "3141592653" not in result.output


def test_every_admin_call_needs_the_right_token(served: Any) -> None:
    wrong = {"Authorization": "Bearer " + "x" * len(TOKEN)}
    other_scheme = {"Authorization": f"Basic {TOKEN}"}
    with httpx.Client(base_url=served.url) as c:
        for method, path in ADMIN_CALLS:
            for headers in ({}, wrong, other_scheme):
                r = c.request(method, path, json={"challenger_weight": 0}, headers=headers)
                assert r.status_code == 401, (method, path, headers)
                assert "Authorization: Bearer <token>" in r.json()["error"]
        assert c.get("/admin/routes", headers=ADMIN).json()["champion"] == "1"


def test_every_admin_call_is_off_without_a_configured_token(
    canary_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRIFTLOOP_ADMIN_TOKEN", raising=False)
    with BackgroundServer(build_context(canary_project)) as server, httpx.Client() as c:
        for method, path in ADMIN_CALLS:
            r = c.request(method, f"{server.url}{path}", headers=ADMIN)
            assert r.status_code == 403 and "admin API is disabled" in r.json()["error"]


def test_the_token_is_in_no_log_answer_or_repr(
    served: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    infer = f"/v2/models/{served.ctx.model_name}/infer"
    near_misses = [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"bearer  {TOKEN}", TOKEN]
    with caplog.at_level(logging.DEBUG), httpx.Client(base_url=served.url) as c:
        answers = [c.get("/admin/routes", headers={"Authorization": h}) for h in near_misses]
        answers += [
            c.post("/admin/promote", json={"version": "nope"}, headers=ADMIN),
            c.post("/admin/weights", content=b"{", headers=ADMIN),
            c.post("/admin/weights", json={"challenger_weight": 500}, headers=ADMIN),
            c.post("/admin/flush", headers=ADMIN),
            c.post(infer, content=b"junk", headers=ADMIN),
            c.post(infer, content=v2_body(feature_rows()), headers=ADMIN),
        ]
        served.ctx.flush_logs()
    assert {a.status_code for a in answers} == {200, 400, 401, 404, 422}
    for answer in answers:
        assert TOKEN not in answer.text and TOKEN not in str(answer.headers)
    out, err = capfd.readouterr()
    assert TOKEN not in caplog.text + out + err
    ctx = served.ctx
    for obj in (ctx, ctx.settings, ctx.project.config, ctx.registry, ctx.service):
        assert TOKEN not in repr(obj) and TOKEN not in str(obj), type(obj).__name__
    logged = b"".join(p.read_bytes() for p in ctx.project.state_dir.rglob("*.parquet"))
    assert TOKEN.encode() not in logged


def test_body_and_batch_limits_come_from_the_config(
    canary_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP__SERVING__MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("DRIFTLOOP__SERVING__MAX_BATCH_ROWS", "2")
    project = Project.load(canary_project.root)
    infer = f"/v2/models/{project.model_name}/infer"
    entities = [{"store_id": 0, "product_id": p} for p in range(3)]
    with BackgroundServer(build_context(project)) as server, httpx.Client(base_url=server.url) as c:
        assert c.post(infer, content=v2_body(feature_rows(2))).status_code == 200
        rows = c.post(infer, content=v2_body(feature_rows(3)))
        assert rows.status_code == 413
        assert "batch of 3 rows exceeds serving.max_batch_rows 2" in rows.json()["error"]
        many = c.post("/v1/predict", content=orjson.dumps({"entities": entities}))
        assert many.status_code == 413 and "serving.max_batch_rows 2" in many.json()["error"]
        for path in (infer, "/v1/predict", "/v1/feedback"):
            big = c.post(path, content=b" " * 5000)
            assert big.status_code == 413, path
            assert "exceeds serving.max_body_bytes 4096" in big.json()["error"]
