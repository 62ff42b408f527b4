"""facesketch: reproducible face photo <-> sketch synthesis.

Importing the package quiets TensorFlow's C++ start-up chatter (oneDNN notes,
CUDA probing on machines without a GPU) before TensorFlow is ever imported,
so the user's terminal shows progress, not noise. Set TF_CPP_MIN_LOG_LEVEL
yourself to see it again.

TensorFlow's oneDNN CPU kernels stay on (TensorFlow's default): 1.6x faster
here, and bit-identical from run to run on one machine with one thread count.
Export TF_ENABLE_ONEDNN_OPTS=0 for TensorFlow's portable kernels, whose
results also match across CPUs of different instruction sets (docs/speed.md:
Reproducibility).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

TASKS = ("f2s", "s2f")
