"""The pipeline: its configuration, its factory and what the runners share."""
