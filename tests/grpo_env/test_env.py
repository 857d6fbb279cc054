"""The VerifiableEnv contract: reset/step types, seeding, pinning, multi-turn, errors."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from grpo_env import EpisodeError, Status, Task, VerifiableEnv, VerifyResult

TASKS = [Task(id=f"t{i}", prompt=f"Say {i}.", answer=str(i)) for i in range(10)]


def exact(task: Task, completion: str) -> float:
    return float(completion.strip() == task.answer)


def make_env(**kwargs) -> VerifiableEnv:
    return VerifiableEnv(TASKS, rubric=exact, **kwargs)


def test_reset_returns_fresh_chat_messages_and_task_id():
    env = make_env(system_prompt="Be brief.")
    obs, info = env.reset(seed=0)
    assert obs[0] == {"role": "system", "content": "Be brief."}
    assert obs[1]["role"] == "user" and obs[1]["content"].startswith("Say ")
    assert info["task_id"] in {t.id for t in TASKS}
    assert obs in env.observation_space
    obs[1]["content"] = "mutated by the caller"
    assert env.transcript[1]["content"] != "mutated by the caller"


def test_step_scores_and_terminates_single_turn():
    env = make_env()
    env.reset(options={"task_id": "t3"})
    obs, reward, terminated, truncated, info = env.step("3")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert isinstance(reward, float)
    assert info["verify"].status is Status.OK
    assert info["components"] == {"score": 1.0}
    assert obs[-1] == {"role": "assistant", "content": "3"}
    env.reset(options={"task_id": "t3"})
    assert env.step("4")[1] == 0.0


def test_same_seed_same_task_and_seeds_reach_many_tasks():
    env = make_env()
    assert env.reset(seed=7) == env.reset(seed=7)
    assert len({env.reset(seed=s)[1]["task_id"] for s in range(30)}) > 5


def test_options_pin_a_task_by_id_index_or_object():
    env = make_env()
    assert env.reset(options={"task_id": "t5"})[1]["task_id"] == "t5"
    assert env.reset(options={"index": 2})[1]["task_id"] == "t2"
    custom = {"id": "x", "prompt": "Say 42.", "answer": "42"}
    obs, info = env.reset(options={"task": custom})
    assert info["task_id"] == "x" and obs[-1]["content"] == "Say 42."
    assert env.step("42")[1] == 1.0


def test_bad_options_and_unknown_task_ids_are_clear_errors():
    env = make_env()
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"task_name": "t1"})
    with pytest.raises(ValueError, match="at most one"):
        env.reset(options={"task_id": "t1", "index": 1})
    with pytest.raises(KeyError, match="no task with id 'nope'"):
        env.reset(options={"task_id": "nope"})


def test_step_without_episode_and_non_text_action_fail():
    env = make_env()
    with pytest.raises(EpisodeError, match="reset"):
        env.step("1")
    env.reset(seed=0)
    with pytest.raises(TypeError, match="str"):
        env.step(3)  # type: ignore[arg-type]
    env.step("x")
    with pytest.raises(EpisodeError):
        env.step("again")


def test_action_space_accepts_any_unicode_text():
    env = make_env()
    for text in ["", "  \n\t", "\\boxed{\\frac{1}{2}}", "中文 🙂 λ", "<think>x</think>"]:
        assert text in env.action_space
    assert 3 not in env.action_space
    sample = env.action_space.sample()
    assert isinstance(sample, str)


def test_gymnasium_env_checker_passes():
    check_env(make_env(render_mode="ansi"))


def test_render_ansi_shows_the_conversation():
    env = make_env(render_mode="ansi")
    env.reset(options={"task_id": "t1"})
    env.step("1")
    text = env.render()
    assert "[user]\nSay 1." in text and "[assistant]\n1" in text
    assert make_env().render() is None


def test_crashing_verifier_is_an_infra_error_not_a_zero():
    def broken(task: Task, completion: str) -> float:
        raise RuntimeError("checker exploded")

    env = VerifiableEnv(TASKS, rubric=broken)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("1")
    assert info["verify"].status is Status.INFRA_ERROR
    assert "checker exploded" in info["verify"].details["reason"]
    assert reward == 0.0 and terminated


def test_score_many_scores_a_group():
    env = make_env()
    results = env.score_many(TASKS[2], ["2", "3", " 2 "])
    assert [r.score for r in results] == [1.0, 0.0, 1.0]


def test_env_without_rubric_or_verify_says_what_to_do():
    env = VerifiableEnv(TASKS)
    env.reset(seed=0)
    _, _, _, _, info = env.step("1")
    assert info["verify"].status is Status.INFRA_ERROR
    assert "override verify" in info["verify"].details["reason"]


class GuessNumber(VerifiableEnv):
    """A multi-turn env: the model guesses, the env says higher/lower."""

    def env_response(self, task, messages, state):
        guess = messages[-1]["content"].strip()
        if guess == task.answer:
            return None
        if not guess.isdigit():
            return "Please answer with a number."
        return "higher" if int(guess) < int(task.answer) else "lower"

    def verify(self, task, completion):
        return VerifyResult(score=float(completion.strip() == task.answer))


def test_multi_turn_hook_continues_then_terminates():
    env = GuessNumber([Task(id="g", prompt="Guess 1-10.", answer="7")], max_turns=4)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("3")
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert obs[-1] == {"role": "user", "content": "higher"} and "verify" not in info
    obs, reward, terminated, truncated, info = env.step("7")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["turn"] == 2


def test_multi_turn_truncates_at_max_turns_and_still_scores():
    env = GuessNumber([Task(id="g", prompt="Guess 1-10.", answer="7")], max_turns=2)
    env.reset(seed=0)
    env.step("1")
    _, reward, terminated, truncated, info = env.step("2")
    assert (reward, terminated, truncated) == (0.0, False, True)
    assert info["verify"].status is Status.OK


def test_multi_turn_env_passes_the_checker():
    check_env(GuessNumber([Task(id="g", prompt="Guess.", answer="7")], max_turns=3))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="max_turns"):
        make_env(max_turns=0)
    with pytest.raises(ValueError, match="render_mode"):
        make_env(render_mode="human")
    with pytest.raises(ValueError, match="empty"):
        VerifiableEnv([], rubric=exact)


def test_is_a_gymnasium_env():
    assert isinstance(make_env(), gym.Env)


# ----- the multi-turn contract: state, list replies, turn rewards, verify_episode -------------


class Counter(VerifiableEnv):
    """Replies with a tool message then a user message; counts calls in its per-episode state;
    rewards each turn; scores the whole transcript."""

    def initial_state(self, task):
        return {"tool_calls": 0, "seen": []}

    def env_response(self, task, messages, state):
        state["tool_calls"] += 1
        state["seen"].append(messages[-1]["content"])
        if messages[-1]["content"] == "stop":
            return None
        return [{"role": "tool", "content": "ok"}, {"role": "user", "content": "again"}]

    def turn_reward(self, task, messages, state):
        return 0.25

    def verify_episode(self, task, messages, state):
        turns = sum(m["role"] == "assistant" for m in messages)
        return VerifyResult(score=1.0 if turns == len(state["seen"]) else 0.0)


def test_list_replies_state_and_turn_rewards_through_step():
    env = Counter([Task(id="c", prompt="Go.")], max_turns=5, sum_turn_rewards=True)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("a")
    assert [m["role"] for m in obs[-2:]] == ["tool", "user"] and reward == 0.25
    assert info["turn_reward"] == 0.25 and not (terminated or truncated)
    _, reward, terminated, _, info = env.step("stop")
    # The return (sum of step rewards) is the verdict plus every turn reward.
    assert terminated and 0.25 + reward == pytest.approx(1.5)
    assert info["components"]["turn_1"] == 0.25 and info["components"]["turn_2"] == 0.25
    assert info["verify"].score == pytest.approx(1.5)


def test_turn_rewards_are_components_only_unless_summed():
    env = Counter([Task(id="c", prompt="Go.")], max_turns=5)
    env.reset(seed=0)
    assert env.step("a")[1] == 0.0
    _, reward, _, _, info = env.step("stop")
    assert reward == 1.0 and info["components"]["turn_2"] == 0.25


def test_each_reset_gets_a_fresh_state():
    env = Counter([Task(id="c", prompt="Go.")], max_turns=5)
    env.reset(seed=0)
    env.step("a")
    env.reset(seed=0)
    env.step("stop")  # a shared state would have seen two turns and score 0
    assert env._state["seen"] == ["stop"]
    states = [env.initial_state(env.tasks[0]) for _ in range(2)]
    assert states[0] is not states[1] and states[0]["seen"] is not states[1]["seen"]


def test_bad_replies_are_rejected_with_a_clear_message():
    class Bad(Counter):
        def env_response(self, task, messages, state):
            return [{"role": "assistant", "content": "I speak for the model"}]

    env = Bad([Task(id="c", prompt="Go.")], max_turns=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="role"):
        env.step("a")


def test_verify_episode_defaults_to_verify_on_the_last_model_turn():
    env = GuessNumber([Task(id="g", prompt="Guess.", answer="7")], max_turns=3)
    env.reset(seed=0)
    env.step("3")
    assert env.step("7")[1] == 1.0


def test_new_multi_turn_env_passes_the_checker():
    check_env(Counter([Task(id="c", prompt="Go.")], max_turns=4, sum_turn_rewards=True))


def test_max_episode_tokens_is_validated():
    with pytest.raises(ValueError, match="max_episode_tokens"):
        make_env(max_episode_tokens=0)
