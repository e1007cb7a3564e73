"""How the ``fitserve`` command's processes serve: the interpreter lock's switch interval."""

from __future__ import annotations

import sys

import pytest

import service.server
from service.settings import Settings


class Stop(Exception):
    """Raised in place of creating the server, once what serve() set up is seen."""


def test_serving_lets_the_loop_thread_take_the_interpreter_lock_within_a_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[float] = []

    def create_server(*args: object, **kwargs: object) -> None:
        seen.append(sys.getswitchinterval())
        raise Stop

    before = sys.getswitchinterval()
    monkeypatch.setattr(service.server, "create_server", create_server)
    try:
        with pytest.raises(Stop):
            service.server.serve(Settings(port=0))
    finally:
        sys.setswitchinterval(before)
    assert seen == [pytest.approx(0.001)]
    assert before == pytest.approx(0.005)  # Python's default, which serve() changes
