"""Fixtures that build the reference firmware once per session into a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fw_helpers import build, start_with_pty, stop

from robot_ac.hardware.serial_link import SerialLink


@pytest.fixture(scope="session")
def host_firmware(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build("host", tmp_path_factory.mktemp("fw_host")))


@pytest.fixture(scope="session")
def sanitized_firmware(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Host build with AddressSanitizer and UBSan: any memory or UB error kills the process."""
    cc = "cc -fsanitize=address,undefined -fno-sanitize-recover=all -g"
    return str(build("host", tmp_path_factory.mktemp("fw_asan"), cc=cc))


@pytest.fixture()
def device(host_firmware: str) -> Iterator[SerialLink]:
    """A running host-build firmware on a fresh pty, with a link to it already answering."""
    proc, pty = start_with_pty([host_firmware, "--pty"])
    try:
        with SerialLink(pty) as link:
            yield link
    finally:
        stop(proc)
