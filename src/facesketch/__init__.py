"""facesketch: reproducible face photo <-> sketch synthesis.

Importing the package quiets TensorFlow's C++ start-up chatter (oneDNN notes,
CUDA probing on machines without a GPU) before TensorFlow is ever imported,
so the user's terminal shows progress, not noise. Set TF_CPP_MIN_LOG_LEVEL
yourself to see it again.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # exact, repeatable CPU maths
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

TASKS = ("f2s", "s2f")
