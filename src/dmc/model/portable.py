"""Portable CPU training (``train.portable``): weights whose bytes do not depend on the CPU model or
its core count.

Where the bytes of CPU training come from the host, and the pin of each in this mode:

* **oneDNN** (convolutions, some matmuls) picks its JIT kernels and their blocking from the ISA
  (SSE4.1 / AVX2 / AVX-512 / AMX) and the cache sizes: switched off
  (``torch.backends.mkldnn.enabled = False``); convolutions then run ATen's im2col + GEMM.
* **NNPACK** (ATen's forward convolution for batches of 16 or more once oneDNN is off) needs AVX2
  and sizes its own thread pool: switched off (``torch.backends.nnpack.set_flags(False)``).
* **ATen's vectorised kernels** (elementwise ops, reductions, softmax, Adam's foreach ops) are
  compiled per capability (DEFAULT / AVX2 / AVX512) and chosen at the first call:
  ``ATEN_CPU_CAPABILITY=default`` (read once, at torch's first dispatched kernel).
* **MKL** (the GEMMs of convolution and linear layers) dispatches on the CPU: its conditional
  numerical reproducibility mode ``MKL_CBWR=COMPATIBLE`` (read at MKL's first call), and
  ``MKL_DYNAMIC=FALSE`` so that MKL uses the threads it is given, not fewer.
* **Intra-op threads**: ATen's ``parallel_for`` and MKL split work (and sum partial results) by
  the number of threads, which defaults to the core count: a fixed number,
  ``train.portable_threads``, whatever the cores (``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` and
  ``torch.set_num_threads``; ``OMP_DYNAMIC=FALSE`` so OpenMP starts them all, also on fewer cores).
  One inter-op thread (no parallel JIT forks).
* **Algorithms**: ``torch.use_deterministic_algorithms(True)``; float32 matmuls at ``highest``
  precision (``medium``/``high`` let oneDNN use bf16 on CPUs that have it); denormals kept
  (``torch.set_flush_denormal(False)``: flush-to-zero is a per-thread CPU mode some libraries set).
* **DataLoader workers** only copy the stored bytes (uint8 frames; the scaling is done in the
  training process, :func:`dmc.model.dataset.unit_range`), and the batches come back in order: ``train.num_workers`` does not change the bytes
  (tests/test_portable_training.py trains with other worker counts).

The environment variables must be in place before torch's first kernel or MKL call in the
process: :func:`pin_environment` is called by ``dmc train`` before it imports torch.  In a process
where torch already ran (a test, a notebook), :func:`apply` still sets what can be set at any time
and :func:`settings` records what is in force; :func:`missing_pins` names what did not take.

Residual dependencies, not pinned here: the software (torch's wheel, pinned by requirements.lock)
and glibc's libm (its FMA variants of ``exp``/``log`` are chosen by CPUID; every x86-64 CPU with
AVX2 has FMA, so AVX2 hosts agree, and the test masks them too: docs/reproducibility.md).

The inference steps (``dmc extract``, ``dmc localize``, ``dmc heldout``) take the same pins from
``train.portable`` (:func:`pin_step`): the model's features, heat maps and metrics are computed
with the same kernels on every CPU. The SVMs of ``dmc evaluate`` run in scikit-learn (liblinear and
numpy: not pinned here).

CUDA training is not pinned: it stays fast (cuDNN autotuning, bf16 autocast) and is reproducible
per GPU model and software stack only.
"""

from __future__ import annotations

import os
from pathlib import Path

#: environment variables of the portable mode that do not depend on the thread count
FIXED_ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "MKL_DYNAMIC": "FALSE",
             "OMP_DYNAMIC": "FALSE"}
#: the ATen capability the portable mode runs (as torch.backends.cpu.get_cpu_capability() spells it)
CAPABILITY = "DEFAULT"


def environment(threads: int) -> dict[str, str]:
    """Every environment variable the portable mode sets, for ``threads`` intra-op threads."""
    return {**FIXED_ENV, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def wanted(train: dict) -> bool:
    """Whether params' ``train`` section asks for portable training (absent key: the fast mode)."""
    return bool(train.get("portable", False))


def pin_environment(train: dict) -> None:
    """Set the portable mode's environment variables (overriding any value already set) when
    ``train.portable`` is on and the training may run on the CPU; call it before torch's first use."""
    if wanted(train) and train.get("device", "auto") != "cuda":
        os.environ.update(environment(int(train["portable_threads"])))


def pin_step(train, device_setting: str) -> dict:
    """The inference steps' pin (``dmc extract``, ``dmc localize``, ``dmc heldout``): the portable
    mode of params' ``train`` section (a :class:`dmc.config.Train`; only ``portable`` and
    ``portable_threads`` are read) for a step that runs on ``device_setting`` (its own device key).
    Sets the environment (call it before torch's first use) and returns the settings for
    :func:`apply` once the device is known, so that the features, heat maps and metrics of the
    portable model are the same bytes on any CPU too."""
    settings = {"portable": train.portable, "portable_threads": train.portable_threads, "device": device_setting}
    pin_environment(settings)
    return settings


def apply(train: dict, device_type: str) -> None:
    """The settings that torch takes at any time: the portable pins on the CPU, nothing else
    otherwise (the fast mode keeps torch's defaults: oneDNN on, all cores)."""
    import torch

    if not (wanted(train) and device_type == "cpu"):
        return
    threads = int(train["portable_threads"])
    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:            # already set, or inter-op work already ran in this process
        pass
    torch.use_deterministic_algorithms(True)
    torch.set_float32_matmul_precision("highest")
    torch.set_flush_denormal(False)


#: MKL's code-path branches (mkl_cbwr.h: MKL_CBWR_BRANCH_OFF, MKL_CBWR_AUTO, MKL_CBWR_COMPATIBLE, ...)
MKL_BRANCHES = {1: "OFF", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2", 6: "SSE4_1", 7: "SSE4_2", 8: "AVX", 9: "AVX2",
                10: "AVX512_MIC", 11: "AVX512", 12: "AVX512_MIC_E1", 13: "AVX512_E1"}


NO_MKL = "no MKL"


def mkl_cbwr() -> str:
    """The code path MKL runs in this process (asked from MKL itself, ``mkl_cbwr_get``, through the
    symbol torch's library exports), :data:`NO_MKL` where torch has no MKL (its BLAS is then the
    host's: not pinned here), "" where MKL cannot be asked."""
    import ctypes

    import torch

    if not torch.backends.mkl.is_available():
        return NO_MKL
    lib = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        get = ctypes.CDLL(str(lib)).mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return ""
    get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
    branch = get(1)     # MKL_CBWR_BRANCH
    return MKL_BRANCHES.get(branch, str(branch))


def settings(train: dict, device_type: str) -> dict:
    """The training mode and the settings in force in this process, recorded with the model.

    The portable mode's record holds only values that are the same on every host (no CPU
    model, no core count), so that the model file's bytes are too."""
    import torch

    portable = wanted(train) and device_type == "cpu"
    # torch's version without the local build tag (+cpu, +cu128: the same release and CPU kernels)
    out = {"mode": "portable" if portable else "fast", "device": device_type,
           "torch": torch.__version__.split("+")[0]}
    if device_type != "cpu":
        return out
    out.update({"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "onednn": bool(torch.backends.mkldnn.enabled), "nnpack": bool(torch._C._get_nnpack_enabled()),
                "mkl_cbwr": mkl_cbwr(), "mkl_dynamic": os.environ.get("MKL_DYNAMIC", ""),
                "omp_dynamic": os.environ.get("OMP_DYNAMIC", ""),
                "deterministic": torch.are_deterministic_algorithms_enabled(),
                "float32_matmul_precision": torch.get_float32_matmul_precision()})
    return out


def missing_pins(record: dict, train: dict) -> list[str]:
    """The pins of the portable mode that ``record`` (:func:`settings`) lacks: empty when the
    mode is complete (or not asked for)."""
    if record.get("mode") != "portable":
        return []
    want = {"threads": int(train["portable_threads"]), "interop_threads": 1, "cpu_capability": CAPABILITY,
            "onednn": False, "nnpack": False, "mkl_cbwr": FIXED_ENV["MKL_CBWR"], "mkl_dynamic": FIXED_ENV["MKL_DYNAMIC"],
            "omp_dynamic": FIXED_ENV["OMP_DYNAMIC"], "deterministic": True, "float32_matmul_precision": "highest"}
    if record.get("mkl_cbwr") == NO_MKL:
        del want["mkl_cbwr"]
    return [f"{k}={record.get(k)!r} (wanted {v!r})" for k, v in want.items() if record.get(k) != v]


def describe(record: dict | None) -> str:
    """One line naming a recorded training mode (``dmc verify``'s report)."""
    if not record:
        return "mode not recorded (trained before train.portable existed)"
    if record.get("mode") != "portable":
        return f"{record.get('mode', '?')} mode on {record.get('device', '?')} (bytes depend on the host)"
    return (f"portable mode ({record.get('threads')} threads, ATen {record.get('cpu_capability')}, "
            f"oneDNN {'on' if record.get('onednn') else 'off'}, MKL_CBWR={record.get('mkl_cbwr')}, torch "
            f"{record.get('torch')})")
