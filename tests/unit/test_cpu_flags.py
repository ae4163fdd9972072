"""``$TIF_CPU_FLAGS``: the CPU flags that the fast-bf16 detector (and so ``--dtype auto``) reads
in place of ``/proc/cpuinfo``; the suite sets it to an AVX2-only CPU for every test and every
subprocess (tests/conftest.py), and the ``cpu`` fixture fakes both kinds of CPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import conftest
from tif_unlearn.errors import TifError
from tif_unlearn.train import precision

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("value", "flags", "fast"),
    [
        ("avx2 fma", {"avx2", "fma"}, False),
        ("avx2,amx_bf16", {"avx2", "amx_bf16"}, True),
        (" avx512_bf16 ,  avx2 ", {"avx512_bf16", "avx2"}, True),
        ("", set(), False),  # set to nothing: a CPU without flags, not the real one
    ],
)
def test_the_variable_stands_in_for_the_cpus_flags(monkeypatch, value, flags, fast):
    monkeypatch.setenv("TIF_CPU_FLAGS", value)
    assert precision.cpu_flags() == flags
    assert precision.cpu_has_fast_bf16() is fast
    assert precision.eval_dtype("auto", CPU) == ("bfloat16" if fast else "float32")
    dtype, bf16, reason = precision.training_precision("auto", False, CPU)
    assert (dtype, bf16) == ("float32", fast)
    assert reason.endswith("on cpu per $TIF_CPU_FLAGS)")  # tif_run.json says where it came from


def test_without_the_variable_the_flags_come_from_proc_cpuinfo(monkeypatch):
    monkeypatch.delenv("TIF_CPU_FLAGS")
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            line = next((row for row in cpuinfo if row.startswith("flags")), "")
    except OSError:
        line = ""
    assert precision.cpu_flags() == set(line.partition(":")[2].split())
    assert "TIF_CPU_FLAGS" not in precision.training_precision("auto", False, CPU)[2]


def test_bf16_refusal_names_the_variable(monkeypatch):
    monkeypatch.setenv("TIF_CPU_FLAGS", "avx2")
    with pytest.raises(TifError, match=r"no AVX-512-BF16 or AMX flag per \$TIF_CPU_FLAGS"):
        precision.check_bf16(CPU)


def test_the_suite_runs_on_an_avx2_only_cpu_subprocesses_included():
    assert conftest.CPU_FLAGS_VARIABLE == precision.CPU_FLAGS_VARIABLE
    assert os.environ["TIF_CPU_FLAGS"] == conftest.AVX2_ONLY_FLAGS
    assert not precision.cpu_has_fast_bf16()
    # eval_dtype reads only device.type: a stand-in object is enough
    code = (
        "import types; from tif_unlearn.train.precision import eval_dtype; "
        "print(eval_dtype('auto', types.SimpleNamespace(type='cpu')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "float32"


def test_the_cpu_fixture_gives_both_answers(cpu):
    assert precision.cpu_has_fast_bf16() is cpu.fast_bf16
    assert precision.eval_dtype("auto", CPU) == cpu.eval_dtype
    assert precision.training_precision("auto", False, CPU)[1] is cpu.fast_bf16
