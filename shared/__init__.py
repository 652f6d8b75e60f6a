"""Names every layer shares: a leaf that imports nothing of the project (names.py), and the
one environment setting every entry point applies before TensorFlow loads (env.py)."""
