"""Clock status on a Pi without RTC: timesyncd's flag file, else the kernel's own word."""

from __future__ import annotations

from pathlib import Path

from station.clock import ClockStatus, _kernel_synced, boot_id


def test_timesyncd_flag_file_says_synchronised(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    flag.touch()
    assert ClockStatus(flag=flag).synced() is True


def test_without_the_flag_the_kernel_decides(tmp_path: Path) -> None:
    kernel = _kernel_synced()  # adjtimex: True/False, or None where a sandbox forbids it
    assert kernel in (True, False, None)
    assert ClockStatus(flag=tmp_path / "absent").synced() is bool(kernel)


def test_the_answer_is_cached(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    status = ClockStatus(ttl=3600, flag=flag)
    first = status.synced()
    flag.touch()
    assert status.synced() is first  # read on every record: not a syscall each time


def test_boot_id_is_the_kernels() -> None:
    assert boot_id() == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
