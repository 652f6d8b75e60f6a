# The image every task of the compiled pipeline runs (runner_kubeflow.py --image):
# TFX 1.16's own image, this project's pinned dependencies and its code.
#
#   docker build -t REGISTRY/movielens-tfx:TAG . && docker push REGISTRY/movielens-tfx:TAG
#
# The pins are requirements.lock, the same file the local set-up installs (tests check that
# this base image's TFX is the lock's); TFX's image already holds most of them at these
# versions, so pip adds TensorFlow Recommenders and tf-keras and changes little else.
FROM tensorflow/tfx:1.16.0

WORKDIR /movielens-tfx
COPY requirements.lock .
RUN python -m pip install --no-cache-dir --requirement requirements.lock

# TFRS 0.7.7 needs Keras 2 (tf-keras) under TensorFlow 2.16.
ENV TF_USE_LEGACY_KERAS=1 \
    PYTHONPATH=/movielens-tfx
# The packages the compiled pipeline names by module path (executors, run_fn,
# preprocessing_fn); MovieLens itself stays out (.dockerignore): the pipeline reads it
# from --data-dir.
COPY shared shared
COPY components components
COPY data data
COPY modules modules
COPY pipeline pipeline
