"""Names that every layer shares: the data, the user modules, the components, the pipeline,
the runners, the inspector, the tools and the benchmarks.

A leaf: plain values, no imports of the project and none of TensorFlow, so the inspector
and the runners read them without loading either. Change a name here and every reader
follows.
"""
import os

PIPELINE_NAME = 'movielens-tfx'
# The repository's root: the default home of data/movielens and outputs/.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every module's logger is a child of this one (logging.getLogger(f'{LOGGER}.trainer')), so
# the runners configure the project's logging in one call.
LOGGER = 'movielens_tfx'

# Component ids: also the Kubeflow task names and the directories under the pipeline root.
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
CATALOG_REFRESH = 'CatalogRefresh'  # --refresh-catalog: in place of training

# Splits of ExampleGen's artifacts: the ratings' two, and the catalog's one.
TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'eval'
CATALOG_SPLIT = 'catalog'

# Top-K: every top-K figure is computed at these K, and the gate judges the one at GATE_K.
TOP_KS = (1, 5, 10, 50, 100)
GATE_K = 100
# Figures are stored in JSON keyed by K as text ({'100': 0.48}); this is the gate's key.
GATE_KEY = str(GATE_K)

# Files inside artifacts, written by one component and read by others and the inspector.
SOURCE_MANIFEST = 'SOURCE.json'        # a release's directory: where it came from, its rows
HISTORY_FILE = 'history.json'          # the Trainer's model_run: per-epoch figures
PLOT_FILE = 'validation_top100.png'    # the Trainer's model_run: the validation curve
EVALUATION_FILE = 'evaluation.json'    # the Evaluator's evaluation: top-K, slices, gate
TRIALS_FILE = 'trials.json'            # the Tuner's tuner_results: every trial, with seconds
CANDIDATE_TOWER_DIR = 'candidate_tower'  # the Model artifact, beside Format-Serving
EXPORT_CHECK_FILE = 'export_check.json'  # the Trainer's model_run: probe queries checked
REFRESH_FILE = 'catalog_refresh.json'  # CatalogRefresh's model_run: new titles, the check

# Keys of the custom_config the pipeline gives the Trainer, the Tuner and Transform.
CODE_VERSION = 'code_version'          # a fingerprint of the code, so that an edit reruns
TRAINING = 'training'                  # the TrainingConfig as JSON
SERVING_K = 'serving_k'
TUNE_TRIALS = 'trials'
TUNE_VALIDATION_PERCENT = 'validation_percent'  # of the train split, to score trials on
CATALOG_FILES = 'catalog_files'        # added at run time by CatalogTrainer / CatalogTuner
TIMESTAMP_BOUNDARIES = 'timestamp_boundaries'
MAX_TITLE_TOKENS = 'max_title_tokens'

# Custom properties of artifacts that the inspector and the runners read.
PUSHED = 'pushed'                      # PushedModel: 1 when this run pushed
PUSHED_VERSION = 'pushed_version'
PUSHED_DESTINATION = 'pushed_destination'
BLESSED = 'blessed'                    # ModelEvaluation and ModelBlessing
DATA_SOURCE = 'data_source'            # Examples: where the release came from
DATA_LAYOUT = 'data_layout'
