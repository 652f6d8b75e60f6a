"""Developer tools, not shipped in the image: the local launcher of compiled Kubeflow specs
(kfp_local.py) and the layer-depth experiment (experiment.py)."""
