"""The environment every process that runs TensorFlow starts with (a utility: below every stage, so the
notebook runner and training share it without one importing the other)."""

#: TensorFlow's C++ info / warning lines off, oneDNN on (it roughly doubles CPU training speed; TensorFlow
#: leaves it off on CPUs without AVX512-VNNI/BF16). Values already in the environment win.
QUIET_TENSORFLOW_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "1",
    "GRPC_VERBOSITY": "ERROR",
}
