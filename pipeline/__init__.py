"""The pipeline: its configuration, its factory and what the runners share."""
import modules  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
