"""meshkit.keys: the sk- rule (LiteLLM wants it on the master key, OptiLLM must never see it)."""

from __future__ import annotations

import pytest

from meshkit import keys


def test_new_keys_obey_the_rule() -> None:
    for _ in range(50):
        master, other = keys.new_key(master=True), keys.new_key(master=False)
        assert keys.master_key_problem("M", master) is None
        assert keys.other_key_problem("O", other) is None
        assert len(other) == 48 and master == "sk-" + master[3:]


def test_problems_name_the_variable() -> None:
    assert keys.master_key_problem("M", None) == "M is not set"
    assert keys.master_key_problem("M", "abc").startswith("M must start with 'sk-'")
    assert keys.other_key_problem("O", "sk-abc").startswith("O must NOT start with 'sk-'")
    assert keys.other_key_problem("O", None) is None


@pytest.mark.parametrize("env, code, said", [
    ({"M": "sk-1", "O": "2"}, 0, ""),
    ({"M": "1", "O": "2"}, 2, "error: M must start with 'sk-'"),
    ({"M": "sk-1", "O": "sk-2"}, 2, "error: O must NOT start with 'sk-'"),
])
def test_command(env: dict[str, str], code: int, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert keys.main(["--master", "M", "--not-master", "O"], env) == code
    assert capsys.readouterr().err.startswith(said)
