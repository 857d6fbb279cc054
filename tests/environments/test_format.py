"""The think/answer format checker, including tricks other frameworks fell for."""

from __future__ import annotations

import pytest

import grpo_env
from grpo_env import Status
from grpo_env.checks import run_env_checks
from grpo_env.environments.format import FormatEnv, check_format, format_result

GOOD = "<think>\n2 and 2 make 4\n</think>\n<answer>\n4\n</answer>"


def test_well_formed_completion_passes_and_extracts():
    check = check_format(GOOD)
    assert check.ok and check.answer == "4" and check.think == "2 and 2 make 4"
    assert check.partial_score == 1.0 and check.problems == ()
    assert check_format("  <think>a</think><answer>b</answer>\n\n").ok


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("<think><think>a</think></think><answer>4</answer>", "nested think"),
        ("<think>a</think><answer>4</answer><answer>5</answer>", "repeated answer"),
        ("<think>a</think><think>b</think><answer>4</answer>", "repeated think"),
        ("<think>a<answer>4</answer>", "unclosed think"),
        ("<think>a</think><answer>4", "unclosed answer"),
        ("<answer>4</answer><think>a</think>", "answer before think"),
        ("</think>a<think><answer>4</answer>", "close before open"),
        ("<think>a</think>4", "answer outside the tags"),
        ("<think>a</think>The answer is 4. <answer>4</answer>", "text between blocks"),
        ("Sure! <think>a</think><answer>4</answer>", "text before"),
        ("<think>a</think><answer>4</answer> Hope this helps", "text after"),
        ("<think>a</think><answer>  </answer>", "empty answer"),
        ("<think></think><answer>4</answer>", "empty think"),
        ("<think>a</think><answer><answer>4</answer></answer>", "nested answer"),
        ("<think>I might say <answer>3</answer></think><answer>4</answer>", "answer inside think"),
        ("<THINK>a</THINK><ANSWER>4</ANSWER>", "upper-case tags"),
        ("<think>a</think><answer id='x'>4</answer>", "tag with attributes"),
        ("< think >a</ think ><answer>4</answer>", "spaced tags"),
        ("<think>a</think><answer>4</answer/>", "malformed close"),
        ("```\n<think>a</think><answer>4</answer>\n```", "wrapped in a code fence"),
        ("", "empty completion"),
        ("4", "bare answer"),
    ],
)
def test_malformed_completions_fail_strictly(text, why):
    check = check_format(text)
    assert not check.ok, why
    assert check.problems, why
    result = format_result(text)
    assert result.score == 0.0 and result.status is Status.INVALID_FORMAT


def test_answer_outside_tags_is_not_extracted_as_the_answer():
    check = check_format("<think>a</think>42")
    assert check.answer is None


def test_partial_credit_gives_a_quarter_per_part():
    assert format_result(GOOD, partial_credit=True).score == 1.0
    # Both blocks fine and in order, but junk outside: 3 of 4 parts.
    r = format_result("hi <think>a</think><answer>4</answer>", partial_credit=True)
    assert r.score == pytest.approx(0.75) and r.components["clean"] == 0.0
    # Only an answer block: 1 of 4.
    r = format_result("<answer>4</answer>", partial_credit=True)
    assert r.score == pytest.approx(0.25) and r.components == {
        "think": 0.0,
        "answer": 1.0,
        "order": 0.0,
        "clean": 0.0,
    }
    assert format_result("nothing", partial_credit=True).score == 0.0


def test_format_env_end_to_end():
    env = grpo_env.make("format")
    assert isinstance(env.unwrapped, FormatEnv)
    obs, _ = env.reset(seed=1)
    assert "<think>" in obs[0]["content"]
    _, reward, terminated, _, info = env.step(GOOD)
    assert reward == 1.0 and terminated and info["components"]["format/clean"] == 1.0
    env.reset(seed=1)
    _, reward, _, _, info = env.step("<answer>4</answer>")
    assert reward == 0.0 and info["verify"].status is Status.INVALID_FORMAT


def test_format_env_partial_credit_option():
    env = grpo_env.make("format-v0", partial_credit=True)
    env.reset(seed=0)
    assert env.step("<answer>4</answer>")[1] == pytest.approx(0.25)


def test_format_env_passes_all_env_checks():
    outcomes = run_env_checks("format-v0")
    # the fifth, the adversarial probes, is skipped: the format env has no reference answer
    assert [o.passed for o in outcomes] == [True, True, True, True, None], outcomes
