"""The user modules: preprocessing_fn (Transform), run_fn (Trainer) and the two-tower model."""
import os

# TFRS 0.7.7 needs Keras 2: TensorFlow must see this before it is first imported. The one
# place it is set in Python: the pipeline, the tests and the benchmarks import this package
# first; the image sets it in the Dockerfile, which tools/kfp_local.py reads.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
