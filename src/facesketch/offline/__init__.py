"""The study on a machine with no package index (a lent GPU with JAX but no TensorFlow).

``bundle`` builds here a self-contained folder: this package's source, the wheels Keras needs that
JAX does not bring, the preprocessed pairs and the split, and ``run.py``. ``runner`` (what ``run.py``
starts there) installs the missing wheels from the folder, trains the model x task matrix under
Keras' JAX backend and writes the test predictions, histories and timings. ``results`` scores them
back home with the benchmark protocol and writes the normal metrics files and report.

    python -m facesketch.offline build BUNDLE [--workspace WS]      # here
    python3 BUNDLE/run.py --out OUT                                  # there: Python, NumPy, JAX
    python -m facesketch.offline score OUT                           # back home, in the workspace
"""
