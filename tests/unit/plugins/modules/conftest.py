"""Running a module's main() in-process, with its arguments, as Ansible would."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ansible.module_utils import basic

try:  # ansible-core 2.19 and later
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core 2.18: the module reads its arguments from basic._ANSIBLE_ARGS

    @contextlib.contextmanager
    def patch_module_args(args: dict[str, Any]) -> Iterator[None]:
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved

RunModule = Callable[[Callable[[], None], dict[str, Any]], tuple[int, dict[str, Any]]]


@pytest.fixture
def run_module(capsys: pytest.CaptureFixture[str]) -> RunModule:
    """Call ``main`` with ``args``; return its exit code and the JSON it printed."""

    def run(main: Callable[[], None], args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with patch_module_args(args), pytest.raises(SystemExit) as excinfo:
            main()
        code = excinfo.value.code
        return (code if isinstance(code, int) else 1), json.loads(capsys.readouterr().out)

    return run
