"""Shared test set-up: environment before TensorFlow loads, and a synthetic-data pipeline run."""
import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')  # before TensorFlow is first imported
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
