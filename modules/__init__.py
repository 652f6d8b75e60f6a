"""The user modules: preprocessing_fn (Transform), run_fn (Trainer) and the two-tower model."""
import os

# TFRS 0.7.7 needs Keras 2: TensorFlow must see this before it is first imported.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
