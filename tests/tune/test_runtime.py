"""The pure parts of joining a cluster: how many ``ray://`` attempts, and which hint an error gets.
The connections themselves are tested against real clusters in tests/pipeline/test_cluster.py."""

from __future__ import annotations

import pytest

from raynas.errors import UserError
from raynas.tune.runtime import _client_attempts, _client_server_failed, _explain

# What Ray 2.60's client raises when the head's proxy could not start this client's server
# (ConnectionAbortedError, a ConnectionError, carrying the proxy's traceback).
PROXY_FAILED = ConnectionAbortedError(
    "Initialization failure from server:\n"
    "Traceback (most recent call last):\n"
    '  File ".../ray/util/client/server/proxier.py", line 780, in Datapath\n'
    "    raise RuntimeError(\n"
    "RuntimeError: Proxy failed to Connect to backend! Check `ray_client_server.err` and "
    "`ray_client_server_23000.err` on the head node of the cluster for the relevant logs.\n"
)


def test_attempts_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAYNAS_RAY_CLIENT_ATTEMPTS", raising=False)
    assert _client_attempts() == 3
    monkeypatch.setenv("RAYNAS_RAY_CLIENT_ATTEMPTS", "5")
    assert _client_attempts() == 5


@pytest.mark.parametrize("raw", ["0", "-1", "two", ""])
def test_bad_attempts_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("RAYNAS_RAY_CLIENT_ATTEMPTS", raw)
    with pytest.raises(UserError, match="RAYNAS_RAY_CLIENT_ATTEMPTS=.*whole number >= 1"):
        _client_attempts()


def test_proxy_failure_is_retried_and_explained_without_traceback() -> None:
    assert _client_server_failed(PROXY_FAILED)
    text = _explain("ray://head:10001", PROXY_FAILED)
    assert text.startswith("Proxy failed to Connect to backend!") and "Traceback" not in text
    assert "ray_client_server_23000.err" in text
    assert "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S" in text and "RAY_AUTH_TOKEN" not in text
    assert "\n" not in text


def test_other_client_errors_get_the_token_hint_and_are_not_retried() -> None:
    timeout = ConnectionError("ray client connection timeout")
    assert not _client_server_failed(timeout)
    text = _explain("ray://head:10001", timeout)
    assert text.startswith("ray client connection timeout") and "RAY_AUTH_TOKEN" in text


def test_local_and_auto_errors_get_no_client_hint() -> None:
    text = _explain("auto", ConnectionError("Could not find any running Ray instance.\nPlease"))
    assert text == "Could not find any running Ray instance. Please"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("AWS_SECRET_ACCESS_KEY", True),
        ("AWS_ACCESS_KEY_ID", True),
        ("aws_session_token", True),
        ("GITHUB_TOKEN", True),
        ("HF_TOKEN", True),
        ("DB_PASSWORD", True),
        ("MY_SECRET", True),
        ("OPENAI_API_KEY", True),
        ("SSH_PRIVATE_KEY", True),
        ("AZURE_CLIENT_SECRET", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("RAY_AUTH_TOKEN", False),  # token auth of a cluster must keep working
        ("RAY_AUTH_TOKEN_PATH", False),
        ("MLFLOW_TRACKING_TOKEN", False),  # the worker's check of the tracking server
        ("MLFLOW_TRACKING_PASSWORD", False),
        ("RAYNAS_SECRET_FILE", False),  # a path
        ("PATH", False),
        ("HOME", False),
        ("OMP_NUM_THREADS", False),
        ("CUDA_VISIBLE_DEVICES", False),
        ("KEYBOARD", False),
    ],
)
def test_secret_looking_names(name: str, secret: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from raynas.tune.runtime import is_secret_name

    monkeypatch.delenv("RAYNAS_PASS_ENV", raising=False)
    assert is_secret_name(name) is secret


def test_pass_env_keeps_a_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from raynas.tune.runtime import is_secret_name

    monkeypatch.setenv("RAYNAS_PASS_ENV", "HF_TOKEN, AWS_*")
    assert not is_secret_name("HF_TOKEN") and not is_secret_name("AWS_PROFILE")
    assert is_secret_name("GITHUB_TOKEN")


def test_secrets_are_out_of_the_environment_while_ray_starts_and_back_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from raynas.tune.runtime import _forwarded_env, _without_secrets

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "keep")
    monkeypatch.setenv("RAY_CHDIR_TO_TRIAL_DIR", "0")
    with _without_secrets() as removed:
        assert "AWS_SECRET_ACCESS_KEY" in removed and "AWS_SECRET_ACCESS_KEY" not in os.environ
        assert os.environ["RAY_AUTH_TOKEN"] == "keep"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "s3cr3t"
    assert "s3cr3t" not in str(_forwarded_env())


def test_tune_does_not_copy_aws_keys_into_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray Tune puts the driver's AWS_* keys into each trial actor's runtime_env."""
    import json
    import subprocess
    import sys

    from ray.tune.execution import class_cache

    from raynas.tune.runtime import keep_secrets_from_trials

    monkeypatch.delenv("RAYNAS_PASS_ENV", raising=False)
    # Ray's own list, read in a fresh interpreter: a search run earlier in this process has
    # already taken the secret names off this process's copy.
    code = ("import json; from ray.tune.execution import class_cache as c; "
            "print(json.dumps(sorted(c.ENV_VARS_TO_PROPAGATE)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    names = set(json.loads(out.strip().splitlines()[-1]))
    monkeypatch.setattr(class_cache, "ENV_VARS_TO_PROPAGATE", names)
    assert "AWS_SECRET_ACCESS_KEY" in class_cache.ENV_VARS_TO_PROPAGATE  # what Tune does
    keep_secrets_from_trials()
    kept = class_cache.ENV_VARS_TO_PROPAGATE
    assert not {n for n in kept if n.startswith("AWS_")} and "RAY_CHDIR_TO_TRIAL_DIR" in kept
