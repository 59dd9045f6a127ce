"""Torch threads default to the cores that other processes leave free."""

import os

import pytest

from dropbench.engine import accel


@pytest.mark.parametrize("busy, expected", [(None, "cores"), (0.0, "cores"), (0.4, "cores"),
                                            (50.0, 1)])
def test_default_threads_leave_busy_cores_alone(monkeypatch, busy, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(accel, "others_load", lambda: busy)
    cores = os.cpu_count() or 1
    assert accel.default_threads() == (cores if expected == "cores" else expected)


def test_default_threads_count_free_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(accel, "others_load", lambda: 5.2)
    assert accel.default_threads() == 3


def test_others_load_reads_this_machine():
    load = accel.others_load()
    if not os.path.exists("/proc/loadavg"):
        assert load is None
        return
    assert isinstance(load, float) and load >= 0
