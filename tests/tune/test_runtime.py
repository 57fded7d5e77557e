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
