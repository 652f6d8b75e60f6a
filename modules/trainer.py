"""run_fn: the Trainer's entry point (module path `modules.trainer.run_fn`).

It trains the two-tower model on the transformed examples, validates over the whole
catalog, and leaves behind:
  Model artifact:
    Format-Serving/   what the Pusher ships (modules/serving.py): the query tower with the
                      Transform graph inside, retrieval over the catalog, and in
                      assets.extra/ the catalog's titles and embeddings
    candidate_tower/  SavedModel: movie titles in, embeddings out (to embed new titles)
  ModelRun artifact (fn_args.model_run_dir):
    history.json      settings, per-epoch loss, validation top-K, popularity baseline
    validation_top100.png   validation top-100 accuracy against epoch
    export_check.json probe queries with the trained model's embeddings and best titles,
                      which the saved model was checked to reproduce
    TensorBoard event files
"""
import json
import logging
import os
import time
from typing import Dict, List, Tuple

import keras_tuner
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from modules import features as f
from modules import hparams, plots, serving, training
from shared import names

logger = logging.getLogger('movielens_tfx.trainer')
CANDIDATE_TOWER_DIR = 'candidate_tower'
EXPORT_CHECK_FILE = 'export_check.json'


def read_catalog(file_pattern: str) -> Tuple[List[str], List[List[int]]]:
  """Every distinct title of the catalog's examples, sorted, and each title's genres (the
  union over the movies that share a title)."""
  files = tf.io.gfile.glob(file_pattern)
  if not files:
    raise FileNotFoundError(f'no catalog examples match {file_pattern}')
  spec = {f.MOVIE_TITLE: tf.io.FixedLenFeature([], tf.string),
          f.MOVIE_GENRES: tf.io.VarLenFeature(tf.int64)}
  genres: Dict[str, set] = {}
  def parse(records):
    movies = tf.io.parse_example(records, spec)
    return movies[f.MOVIE_TITLE], tf.sparse.to_dense(movies[f.MOVIE_GENRES], default_value=-1)

  for batch_titles, batch_genres in tf.data.TFRecordDataset(
      files, compression_type='GZIP').batch(8192).map(parse).as_numpy_iterator():
    for title, ids in zip(batch_titles, batch_genres):
      genres.setdefault(title.decode(), set()).update(int(i) for i in ids if i >= 0)
  titles = sorted(genres)
  return titles, [sorted(genres[title]) for title in titles]


def read_vocabularies(tft_output: tft.TFTransformOutput,
                      catalog_files: str) -> training.Vocabularies:
  """The catalog's titles and genres and the Transform's vocabulary sizes."""
  spec = tft_output.transformed_feature_spec()
  titles, title_genres = read_catalog(catalog_files)
  return training.Vocabularies(
      num_users=tft_output.num_buckets_for_transformed_feature(f.USER_INDEX),
      num_timestamp_buckets=tft_output.num_buckets_for_transformed_feature(f.TIMESTAMP_BUCKET),
      titles=titles, title_genres=title_genres,
      title_tokens=[t.decode() for t in tft_output.vocabulary_by_name(f.TITLE_TOKEN_VOCABULARY)],
      user_feature_buckets={name: tft_output.num_buckets_for_transformed_feature(name)
                            for name in f.USER_FEATURES.values() if name in spec})


def load_inputs(tft_output: tft.TFTransformOutput, train_files: List[str],
                eval_files: List[str], catalog_files: str, config: hparams.TrainingConfig):
  """Vocabularies, the training examples (in memory or to stream, by their number and the
  configuration) and the eval examples: all the Trainer reads."""
  spec = tft_output.transformed_feature_spec()
  # Counting reads every file once: only when the choice depends on the size.
  count = training.count_examples(train_files) if config.input_mode == 'auto' else 0
  mode = training.choose_input_mode(config, count)
  train = (training.load_transformed(train_files, spec) if mode == 'memory'
           else training.TrainFiles(list(train_files), spec))
  eval_ = training.load_transformed(eval_files, spec)
  return read_vocabularies(tft_output, catalog_files), train, eval_


def run_fn(fn_args) -> None:
  started = time.monotonic()
  custom_config = fn_args.custom_config or {}
  config = hparams.TrainingConfig.from_json_dict(custom_config[names.TRAINING])
  if fn_args.hyperparameters:  # the Tuner's best settings, over the configured ones
    tuned = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters).values
    logger.info('Training with the Tuner\'s best settings: %s', tuned)
    config = hparams.with_tuned(config, tuned)
  tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
  vocabularies, train, eval_ = load_inputs(tft_output, fn_args.train_files, fn_args.eval_files,
                                           custom_config['catalog_files'], config)
  trainer = training.make_fit(config, vocabularies, train, eval_, log_dir=fn_args.model_run_dir)
  mode = 'streamed from its files' if trainer.streamed else 'in memory'
  loss = 'exact softmax over the catalog' if trainer.model.exact_softmax else 'in-batch softmax'
  pairs = f', {config.ensemble} pairs of towers side by side' if config.ensemble > 1 else ''
  logger.info('Training %s%s on %s ratings (%s; validation on %s of %s eval ratings) with %s '
              'candidate titles, %s: %s', f'layers {config.layer_sizes}', pairs,
              f'{trainer.num_train:,}', mode, f'{len(trainer.eval_true_index):,}',
              f'{trainer.num_eval:,}', f'{len(vocabularies.titles):,}', loss,
              ', '.join(f'{k}={v}' for k, v in config.to_json_dict().items()
                        if k not in ('layer_sizes', 'top_ks')))
  set_up = time.monotonic()
  history = trainer.fit()
  trained = time.monotonic()
  baseline = trainer.popularity_baseline()
  # The towers are the best validated epoch's when early stopping restored them; their
  # unknown rows become averages before an ensemble validates them as they ship.
  trainer.query_tower.average_unknown()
  final = trainer.kept_top_k()
  logger.info('Validation top-100 accuracy %.4f%s; most-popular baseline %.4f on the same '
              'ratings', final['100'], ' (the pairs side by side)' if pairs else '',
              baseline['100'])

  report = {'config': config.to_json_dict(), 'history': history,
            'final_val_top_k': final, 'best_epoch': trainer.kept_epoch,
            'popularity_baseline_top_k': baseline,
            'num_train': trainer.num_train, 'num_eval': trainer.num_eval,
            'num_validation': len(trainer.eval_true_index),
            'input_mode': 'stream' if trainer.streamed else 'memory',
            'num_candidates': len(vocabularies.titles)}
  if len(trainer.pairs) > 1:  # history and best_epoch above are the first pair's
    report['pairs'] = [{'seed': pair.config.seed, 'best_epoch': pair.kept_epoch,
                        'final_val_top_k': pair.kept_top_k(), 'history': pair.history}
                       for pair in trainer.pairs]
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  label = f'layers {config.layer_sizes}'
  plots.plot_validation_curves(
      {f'{label}, seed {pair.config.seed}' if len(trainer.pairs) > 1 else label: pair.history
       for pair in trainer.pairs}, baseline['100'],
      os.path.join(fn_args.model_run_dir, names.PLOT_FILE))
  export(fn_args.serving_model_dir, fn_args.model_run_dir, tft_output, trainer,
         int(custom_config[names.SERVING_K]))
  # Where the Trainer's time went: reading and building, the epochs, the export and checks.
  report['seconds'] = {'set_up': round(set_up - started, 2),
                       'training': round(trained - set_up, 2),
                       'first_epoch': round(history[0]['seconds'], 2),  # the first pair's
                       'export': round(time.monotonic() - trained, 2)}
  logger.info('Trainer: set-up %.1f s, training %.1f s (first epoch %.1f s), export %.1f s',
              *(report['seconds'][k] for k in ('set_up', 'training', 'first_epoch', 'export')))
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, names.HISTORY_FILE), 'w') as file:
    json.dump(report, file, indent=2)


def export(serving_dir: str, model_run_dir: str, tft_output: tft.TFTransformOutput,
           trainer: training.TwoTowerFit, k: int) -> None:
  """Saves the served model (modules/serving.py) and, beside it, the candidate tower; then
  loads the saved model back and checks it against the trained one (export_check.json)."""
  model = serving.QueryModel(tft_output, trainer.query_tower, trainer.vocabularies.titles,
                             trainer.candidate_embeddings(), k)
  serving.export(serving_dir, model)
  trainer.candidate_tower.save(os.path.join(os.path.dirname(serving_dir), CANDIDATE_TOWER_DIR))
  probe = _probe_queries(tft_output)
  check = check_export(serving_dir, model, probe)
  with tf.io.gfile.GFile(os.path.join(model_run_dir, EXPORT_CHECK_FILE), 'w') as file:
    json.dump(check, file)


def _probe_queries(tft_output: tft.TFTransformOutput) -> Dict[str, np.ndarray]:
  """Known users and an unknown one, at timestamps inside and far outside the data's."""
  users = [u.decode() for u in tft_output.vocabulary_by_name(f.USER_VOCABULARY)[:7]]
  users.append('no-such-user')
  timestamps = [0, 880_000_000, 885_000_000, 890_000_000, 4_000_000_000]
  return {f.USER_ID: np.array(users * len(timestamps), dtype=object),
          f.TIMESTAMP: np.repeat(np.array(timestamps, dtype=np.int64), len(users))}


def check_export(directory: str, model: serving.QueryModel,
                 probe: Dict[str, np.ndarray], top: int = 10) -> Dict:
  """Embeddings and best titles of the probe queries from the in-memory model, which the
  saved one (loaded back) must reproduce; raises if it does not."""
  inputs = {name: tf.constant(values) for name, values in probe.items()}
  embeddings = model.embed(**inputs)['embedding'].numpy()
  scores = embeddings @ model.candidates.numpy().T
  catalog = np.array([t.decode() for t in model.titles.numpy()], dtype=object)
  titles = catalog[np.argsort(-scores, axis=1, kind='stable')[:, :top]]
  loaded = tf.saved_model.load(directory)
  loaded_embeddings = loaded.signatures['embed'](**inputs)['embedding'].numpy()
  loaded_titles = loaded.signatures['retrieve'](**inputs)['titles'].numpy()[:, :top]
  difference = float(np.abs(loaded_embeddings - embeddings).max())
  same_titles = np.mean([list(a) == [t.decode() for t in b]
                         for a, b in zip(titles, loaded_titles)])
  if difference > 1e-4 or same_titles < 1:
    raise RuntimeError(f'the saved model does not reproduce the trained one: embeddings '
                       f'differ by up to {difference:.2g}, best {top} titles agree for '
                       f'{same_titles:.0%} of the probe queries')
  logger.info('Saved model checked against the trained one on %d probe queries: '
              'embeddings within %.1g, the same best %d titles', len(embeddings), difference,
              top)
  return {f.USER_ID: list(probe[f.USER_ID]), f.TIMESTAMP: probe[f.TIMESTAMP].tolist(),
          'embedding': embeddings.tolist(), 'top_titles': titles.tolist()}

