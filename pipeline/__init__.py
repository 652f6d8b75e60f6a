"""The pipeline: its configuration, its factory and what the runners share."""
import os

# TFRS 0.7.7 needs Keras 2: TensorFlow must see this before it is first imported.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
