"""The user modules: preprocessing_fn (Transform), run_fn (Trainer), tuner_fn (Tuner) and the
two-tower model.

TFRS needs Keras 2: the entry points set TF_USE_LEGACY_KERAS before TensorFlow loads
(shared/env.py); importing this package does not.
"""
