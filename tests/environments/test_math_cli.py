"""`grpo-env check math`: one case by hand."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from grpo_env.cli import app

runner = CliRunner()


def test_correct_answer_exits_zero():
    result = runner.invoke(
        app, ["check", "math", "--gold", "\\frac{1}{2}", "--completion", "So \\boxed{0.5}."]
    )
    assert result.exit_code == 0, result.output
    assert "correct" in result.output
    assert "exact-number" in result.output


def test_wrong_answer_exits_one_and_says_why():
    result = runner.invoke(
        app, ["check", "math", "-g", "\\frac{1}{2004!}", "-c", "\\boxed{\\frac{1}{2006!}}"]
    )
    assert result.exit_code == 1
    assert "incorrect" in result.output
    assert "does not match" in result.output


def test_json_output_is_a_verify_result():
    result = runner.invoke(
        app, ["check", "math", "-g", "3", "-c", "It is \\boxed{3} or \\boxed{4}", "--json"]
    )
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["status"] == "invalid_format"
    assert payload["components"] == {"correct": 0.0}
    assert "several different final answers" in payload["details"]["reason"]


def test_completion_from_stdin():
    result = runner.invoke(
        app, ["check", "math", "-g", "72", "-c", "-", "--json"], input="Work.\n#### 72\n"
    )
    assert result.exit_code == 0
    assert json.loads(result.output)["details"]["source"] == "gsm8k"


def test_help_teaches():
    result = runner.invoke(app, ["check", "math", "--help"])
    assert result.exit_code == 0
    assert "--gold" in result.output and "Exits 0" in result.output
