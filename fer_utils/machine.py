"""What this machine is: the CPU model, cores and the SIMD / int8 features inference speed depends on
(a utility: the engine choice of ``fer predict`` and the benchmarks read it)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_info() -> dict:
    """CPU model, core count and the SIMD / int8 dot-product features that matter for inference."""
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.machine()):
                model = line.split(":", 1)[1].strip()
            if line.startswith(("flags", "Features")):
                flags.update(line.split(":", 1)[1].split())
    except OSError:
        pass
    features = {
        "avx2": "avx2" in flags,
        "fma": "fma" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "avx_vnni": "avx_vnni" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_int8": "amx_int8" in flags,
        "arm_dotprod": "asimddp" in flags,
        "arm_i8mm": "i8mm" in flags,
    }
    features["int8_dot_product"] = any(
        features[name] for name in ("avx512_vnni", "avx_vnni", "amx_int8", "arm_dotprod", "arm_i8mm")
    )
    return {"model": model, "cores": os.cpu_count(), "machine": platform.machine(), "features": features}
