"""``driftloop train`` and ``driftloop models`` as a new user runs them."""

from __future__ import annotations

import json
import socket
from typing import Any

import yaml
from typer.testing import CliRunner

from driftloop.cli.main import app

runner = CliRunner()


def run(project: Any, *args: str) -> Any:
    return runner.invoke(app, [*args, "--project", str(project.root)], catch_exceptions=False)


def test_train_train_list_rollback_show(project_copy: Any) -> None:
    first = run(project_copy, "train", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["alias"] == "champion"
    second = run(project_copy, "train")
    assert second.exit_code == 0, second.output
    assert "vs_champion: wape" in second.stdout

    listing = json.loads(run(project_copy, "models", "list", "--json").stdout)
    versions = {v["version"]: v for v in listing["versions"]}
    assert versions["1"]["aliases"] == [] and versions["2"]["aliases"] == ["champion"]
    assert versions["1"]["gate"] == versions["2"]["gate"] == "passed"
    assert versions["2"]["parent"] == "1"

    back = run(project_copy, "models", "rollback", "--reason", "canary looked off")
    assert back.exit_code == 0, back.output
    assert "champion: v2 -> v1 (rollback)" in back.stdout
    shown = json.loads(run(project_copy, "models", "show", "2", "--json").stdout)
    kinds = [(m["kind"], m["from_version"], m["to_version"]) for m in shown["alias_moves"]]
    assert kinds == [("train", "1", "2"), ("rollback", "2", "1")]
    assert shown["alias_moves"][-1]["reason"] == "canary looked off"
    assert shown["alias_moves"][-1]["actor"].endswith("(cli)")
    human = run(project_copy, "models", "show", "1")
    assert "feature_registry_digest" in human.stdout and "rollback" in human.stdout


def test_rollback_with_a_single_champion_is_refused(trained_project: Any) -> None:
    result = run(trained_project, "models", "rollback")
    assert result.exit_code == 2
    assert "v1 is the only champion there has been" in result.stderr


def test_show_unknown_version(trained_project: Any) -> None:
    result = run(trained_project, "models", "show", "9")
    assert result.exit_code == 2
    assert "has no version 9: `driftloop models list` shows the versions" in result.stderr


def test_promote_a_rejected_version_needs_force(project_copy: Any) -> None:
    from driftloop.pipeline.train import run_training
    from driftloop.registry import open_registry

    registry = open_registry(project_copy)
    run_training(project_copy, registry, actor="tests")

    def break_it(frame: Any) -> Any:
        return frame.assign(**{c: 0.0 for c in frame.columns if c.startswith("units_")})

    run_training(project_copy, registry, actor="tests", frame_hook=break_it)
    refused = run(project_copy, "models", "promote", "2")
    assert refused.exit_code == 2 and "pass --force" in refused.stderr
    forced = run(project_copy, "models", "promote", "2", "--force", "--reason", "drill")
    assert forced.exit_code == 0, forced.output
    assert registry.alias("champion").version == "2"  # type: ignore[union-attr]


def test_failed_gate_exits_1(project_copy: Any) -> None:
    path = project_copy.config_path
    data = yaml.safe_load(path.read_text())
    data["training"]["gate"]["max_metric"] = 0.01  # no model can pass
    path.write_text(yaml.safe_dump(data))
    result = run(project_copy, "train")
    assert result.exit_code == 1
    assert "registered as rejected" in result.stderr
    listing = json.loads(run(project_copy, "models", "list", "--json").stdout)
    assert [v["aliases"] for v in listing["versions"]] == [[]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_registry_is_one_clear_message(project_copy: Any) -> None:
    path = project_copy.config_path
    data = yaml.safe_load(path.read_text())
    data["registry"]["tracking_uri"] = f"http://user:secret@127.0.0.1:{free_port()}"
    path.write_text(yaml.safe_dump(data))
    result = run(project_copy, "train")
    assert result.exit_code == 2
    assert "could not be reached" in result.stderr
    assert "registry.tracking_uri" in result.stderr
    assert "secret" not in result.stderr and "user:***@" in result.stderr


def test_bad_as_of_and_on_pass(trained_project: Any) -> None:
    bad_day = run(trained_project, "train", "--as-of", "soon")
    assert bad_day.exit_code == 2 and "--as-of 'soon' is not a date" in bad_day.stderr
    bad_alias = run(trained_project, "train", "--on-pass", "boss")
    assert bad_alias.exit_code == 2 and "choose champion or challenger" in bad_alias.stderr
