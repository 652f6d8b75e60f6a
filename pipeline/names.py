"""Names that the pipeline, its components, its user modules and the inspector share.

Plain strings with no imports, so the inspector and the runners read them without loading
TensorFlow. Component ids are also the ids the pipeline gives its components
(pipeline/pipeline.py), the Kubeflow task names and the directories under the pipeline root.
"""
PIPELINE_NAME = 'movielens-tfx'

EXAMPLE_GEN = 'MovieLensExampleGen'
STATISTICS_GEN = 'StatisticsGen'
SCHEMA_GEN = 'SchemaGen'
EXAMPLE_VALIDATOR = 'ExampleValidator'
VALIDATION_GATE = 'ValidationGate'
TRANSFORM = 'Transform'
TUNER = 'CatalogTuner'
TRAINER = 'CatalogTrainer'
BLESSED_MODEL_RESOLVER = 'latest_blessed_model_resolver'
EVALUATOR = 'RetrievalEvaluator'
PUSHER = 'ServingPusher'

# Files inside artifacts, written by one component and read by others and the inspector.
HISTORY_FILE = 'history.json'          # the Trainer's model_run: per-epoch figures
PLOT_FILE = 'validation_top100.png'    # the Trainer's model_run: the validation curve
EVALUATION_FILE = 'evaluation.json'    # the Evaluator's evaluation: top-K, slices, gate
TRIALS_FILE = 'trials.json'            # the Tuner's tuner_results: every trial, with seconds
