"""How the vLLM engine is planned (grpo_env.policy.vllm_options): no vLLM and no GPU needed."""

import pytest

from grpo_env.policy.vllm_options import (
    LAUNCHER_VARS,
    VLLMConfigError,
    logprob_caveat,
    parse_version,
    plan_engine,
    scoped_env,
)


def plan(**overrides):
    args = {
        "model": "/m",
        "version": (0, 11, 0),
        "world_size": 1,
        "rank": 0,
        "tensor_parallel_size": 1,
        "gpu_memory_utilization": 0.4,
        "max_prompt_tokens": 512,
        "max_new_tokens": 256,
        "seed": 7,
        "sleep": True,
        "port": 12345,
    }
    return plan_engine(**{**args, **overrides})


def test_kv_cache_is_sized_for_prompt_plus_completion_and_logprobs_are_processed():
    options = plan().options
    assert options["max_model_len"] == 512 + 256
    assert options["gpu_memory_utilization"] == 0.4
    assert options["tensor_parallel_size"] == 1
    assert options["logprobs_mode"] == "processed_logprobs"
    assert options["enable_sleep_mode"] is True


def test_one_process_sets_the_launcher_variables_for_the_engine_only():
    p = plan()
    assert p.options["distributed_executor_backend"] == "external_launcher"
    assert p.env_set == {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "12345",
    }
    assert p.in_process


def test_torchrun_ranks_keep_their_variables_and_get_one_engine_each():
    p = plan(world_size=4, rank=3)
    assert p.options["distributed_executor_backend"] == "external_launcher"
    assert p.env_set == {} and p.env_hidden == ()
    assert p.options["seed"] == 7 + 3


def test_tensor_parallel_workers_do_not_inherit_launcher_variables():
    p = plan(tensor_parallel_size=2)
    assert p.options["distributed_executor_backend"] == "mp"
    assert set(LAUNCHER_VARS) <= set(p.env_hidden)
    assert not p.in_process
    environ = {"RANK": "3", "WORLD_SIZE": "8", "PATH": "/bin"}
    with scoped_env(p.env_set, p.env_hidden, environ):
        assert environ == {"PATH": "/bin"}
    assert environ == {"RANK": "3", "WORLD_SIZE": "8", "PATH": "/bin"}


def test_scoped_env_removes_what_it_set():
    environ = {"PATH": "/bin"}
    with scoped_env({"RANK": "0"}, (), environ):
        assert environ["RANK"] == "0"
    assert environ == {"PATH": "/bin"}


def test_impossible_setups_are_refused_with_a_reason():
    with pytest.raises(VLLMConfigError, match="same prompts"):
        plan(world_size=2, tensor_parallel_size=2)
    with pytest.raises(VLLMConfigError, match=r">= 0\.10\.2"):
        plan(version=(0, 9, 2))


def test_sleep_mode_only_where_the_version_has_it():
    assert "enable_sleep_mode" not in plan(sleep=False).options
    assert not plan(sleep=False).sleep


def test_versions_parse_with_local_and_dev_tags():
    assert parse_version("0.10.2") == (0, 10, 2)
    assert parse_version("0.11.1rc2.dev7+g1234.cu128") == (0, 11, 1)
    assert parse_version("0.9.2") < (0, 10, 2)


def test_logprob_caveat_names_truncation_only():
    assert logprob_caveat(0, 1.0) is None
    assert "top-k/top-p" in logprob_caveat(50, 1.0)
    assert "top-k/top-p" in logprob_caveat(0, 0.9)
