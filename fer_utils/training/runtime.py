"""TensorFlow's numerics, set one way for every caller: ``fer train``, notebook 02 and the ablation's kernels.

Two runs of one :class:`~fer_utils.training.config.TrainConfig` give identical metrics when they also share
what this module fixes and records in ``config.json`` (``numerics``): the intra-op thread count (float
reductions are split by thread, so another count sums in another order), one inter-op thread, op
determinism, oneDNN, deterministic ``tf.data`` and the seed of Python, NumPy and TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import sys

from fer_utils.environment import QUIET_TENSORFLOW_ENVIRONMENT
from fer_utils.parallel import default_workers


@contextlib.contextmanager
def stderr_silenced():
    """Send file descriptor 2 to /dev/null: TensorFlow prints its oneDNN note before absl logging starts,
    past ``TF_CPP_MIN_LOG_LEVEL`` (and a Jupyter kernel would show it as a red stderr box); TFLite and its
    converter print native lines there too."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow():
    """``tensorflow`` and ``keras``, imported quietly with :data:`QUIET_TENSORFLOW_ENVIRONMENT` (values
    already in the environment win) when this process has not imported them yet."""
    for name, value in QUIET_TENSORFLOW_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if "keras" not in sys.modules:
        with stderr_silenced():
            import keras  # noqa: F401
    import keras
    import tensorflow as tf

    return tf, keras


def resolved_threads(threads: int | None) -> int:
    """The intra-op thread count a run with ``threads`` gets: that number, or for None TensorFlow's own
    default (``TF_NUM_INTRAOP_THREADS`` when the user set it, else every core)."""
    return threads or int(os.environ.get("TF_NUM_INTRAOP_THREADS") or 0) or default_workers()


def configure_numerics(threads: int | None, seed: int) -> dict:
    """Fix TensorFlow's threads and determinism and seed Python, NumPy and TensorFlow; returns the
    record of it for ``config.json``.

    ``threads``: intra-op threads (None: :func:`resolved_threads`). The thread pools are fixed by the first op a
    process runs: when they already have another size, ValueError (restart the kernel), since the run
    would silently differ from its config.
    """
    tf, keras = import_tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads or 0)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the pools exist already: fine when they have the wanted size
        pass
    current = pool_threads(tf)["intra_op_threads"]
    if current != resolved_threads(threads):
        raise ValueError(
            f"TensorFlow already runs with {current} intra-op thread(s) in this process, the config asks "
            f"for {threads or 'all'}: restart the kernel (or call train.prepare_tensorflow(config) before "
            "building any model)"
        )
    with stderr_silenced():  # the first op logs the oneDNN note once more
        tf.constant(0.0) + 1.0
    keras.utils.set_random_seed(seed)  # Python's random, NumPy and TensorFlow
    tf.config.experimental.enable_op_determinism()
    return numerics_record()


def pool_threads(tf) -> dict:
    """The sizes TensorFlow's thread pools have (or get at the first op): as configured, else from
    ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS``, else every core."""
    configured = {
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }
    variables = {"intra_op_threads": "TF_NUM_INTRAOP_THREADS", "inter_op_threads": "TF_NUM_INTEROP_THREADS"}
    return {
        name: value or int(os.environ.get(variables[name]) or 0) or default_workers()
        for name, value in configured.items()
    }


def numerics_record() -> dict:
    """What, beyond the TrainConfig, decides a run's numbers (``config.json`` → ``numerics``)."""
    from tensorflow.python.framework.config import is_op_determinism_enabled
    from tensorflow.python.util import _pywrap_util_port

    tf, _ = import_tensorflow()
    return {
        **pool_threads(tf),
        "op_determinism": bool(is_op_determinism_enabled()),
        "onednn": bool(_pywrap_util_port.IsMklEnabled()),
        "tf_data_deterministic": True,  # every map keeps order; shuffles are seeded
        "tensorflow": tf.__version__,
    }
