"""The XLA compile options of weakpg's own programs: fewer LLVM passes on the CPU.

Other backends keep XLA's defaults. The options a program names win over ``XLA_FLAGS``;
the options it does not name keep their ``XLA_FLAGS`` value.
"""

from __future__ import annotations

import jax

Options = dict[str, bool | int]

# ``estimate_gradient``: LLVM's optimisation level 1 (of 3) compiles a PG-JD estimate on the
# 4-d LQR (8192 samples, 2-core CPU) in 3.6-3.9 s against 5.8-6.0 s at XLA's defaults and
# runs it as fast (250-310 against 275-280 ms a call; 65536 samples: 1.6-1.8 against
# 1.5-1.7 s).
CPU_ESTIMATOR_OPTIONS: Options = {"xla_backend_optimization_level": 1}
# The training driver's programs: also without XLA's fusion emitters, which cost about a
# quarter of the chunk's compile time and do not change its run time measurably at the
# reproduction's batch of 256 (Pendulum PG-JD: 1.43 -> 1.10 s compiling, 47 ms a chunk
# either way). At a batch of 16384 the estimate runs about a quarter slower without them
# (14.5M against 19M env steps/s), which is why ``estimate_gradient`` keeps them.
CPU_COMPILER_OPTIONS: Options = {**CPU_ESTIMATOR_OPTIONS, "xla_cpu_use_fusion_emitters": False}


def for_backend(cpu_options: Options) -> Options | None:
    """``cpu_options`` where JAX's default backend is the CPU; None (XLA's defaults) elsewhere."""
    return cpu_options if jax.default_backend() == "cpu" else None
