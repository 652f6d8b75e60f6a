"""run_fn: the Trainer's entry point (module path `modules.trainer.run_fn`).

It trains the two-tower model on the transformed examples, validates over the whole
catalog, and leaves behind:
  Model artifact (fn_args.serving_model_dir):
    query_tower/      SavedModel: raw user_id and timestamp in (Transform inside), embedding out
    candidate_tower/  SavedModel: movie titles in, embeddings out
    catalog.json      the candidate titles, in the order of candidate_embeddings.npy
  ModelRun artifact (fn_args.model_run_dir):
    history.json      settings, per-epoch loss, validation top-K, popularity baseline
    validation_top100.png   validation top-100 accuracy against epoch
    TensorBoard event files
"""
import json
import logging
import os
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from modules import features as f
from modules import hparams, plots, training

logger = logging.getLogger('movielens_tfx.trainer')
HISTORY_FILE = 'history.json'
PLOT_FILE = 'validation_top100.png'
QUERY_TOWER_DIR = 'query_tower'
CANDIDATE_TOWER_DIR = 'candidate_tower'
CATALOG_FILE = 'catalog.json'
EMBEDDINGS_FILE = 'candidate_embeddings.npy'


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


class QueryModel(tf.Module):
  """The query tower behind the Transform graph: raw features in, embedding out."""

  def __init__(self, tft_output: tft.TFTransformOutput, query_tower: tf.keras.Model):
    super().__init__()
    self.transform_layer = tft_output.transform_features_layer()  # tracked, so it is saved
    self.query_tower = query_tower
    self.raw_spec = tft_output.raw_feature_spec()

  def _raw_features(self, user_id: tf.Tensor, timestamp: tf.Tensor) -> Dict[str, tf.Tensor]:
    # The Transform graph takes every raw feature it was built with; the candidate
    # side's title is not needed for a query, so an empty one fills its place.
    values = {f.USER_ID: user_id, f.TIMESTAMP: timestamp,
              f.MOVIE_TITLE: tf.fill(tf.shape(user_id), '')}
    return {name: tf.reshape(value, [-1] + list(self.raw_spec[name].shape))
            for name, value in values.items()}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=f.USER_ID),
                                tf.TensorSpec([None], tf.int64, name=f.TIMESTAMP)])
  def embed(self, user_id, timestamp):
    transformed = self.transform_layer(self._raw_features(user_id, timestamp))
    return {'embedding': self.query_tower(transformed)}


def load_inputs(tft_output: tft.TFTransformOutput, train_files: List[str],
                eval_files: List[str], catalog_files: str):
  """Vocabularies, training and eval examples: all the Trainer reads."""
  spec = tft_output.transformed_feature_spec()
  titles, title_genres = read_catalog(catalog_files)
  train = training.load_transformed(train_files, spec)
  eval_ = training.load_transformed(eval_files, spec)
  vocabularies = training.Vocabularies(
      num_users=tft_output.num_buckets_for_transformed_feature(f.USER_INDEX),
      num_timestamp_buckets=tft_output.num_buckets_for_transformed_feature(f.TIMESTAMP_BUCKET),
      titles=titles, title_genres=title_genres,
      title_tokens=[t.decode() for t in tft_output.vocabulary_by_name(f.TITLE_TOKEN_VOCABULARY)])
  return vocabularies, train, eval_


def run_fn(fn_args) -> None:
  custom_config = fn_args.custom_config or {}
  config = hparams.TrainingConfig.from_json_dict(custom_config.get(
      'training', hparams.PRESETS[hparams.DEFAULT_PRESET].to_json_dict()))
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  vocabularies, train, eval_ = load_inputs(tft_output, fn_args.train_files, fn_args.eval_files,
                                           custom_config['catalog_files'])
  logger.info('Training %s on %s ratings (eval %s) with %s candidate titles: %s',
              f'layers {config.layer_sizes}', f'{len(train[f.MOVIE_TITLE]):,}',
              f'{len(eval_[f.MOVIE_TITLE]):,}', f'{len(vocabularies.titles):,}',
              ', '.join(f'{k}={v}' for k, v in config.to_json_dict().items()
                        if k not in ('layer_sizes', 'top_ks')))
  trainer = training.Trainer(config, vocabularies, train, eval_, log_dir=fn_args.model_run_dir)
  history = trainer.fit()
  baseline = trainer.popularity_baseline()
  final = history[-1]['val_top_k']
  logger.info('Validation top-100 accuracy %.4f; most-popular baseline %.4f on the same split',
              final['100'], baseline['100'])

  report = {'config': config.to_json_dict(), 'history': history,
            'final_val_top_k': final, 'popularity_baseline_top_k': baseline,
            'num_train': len(train[f.MOVIE_TITLE]), 'num_eval': len(eval_[f.MOVIE_TITLE]),
            'num_candidates': len(vocabularies.titles)}
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), 'w') as file:
    json.dump(report, file, indent=2)
  plots.plot_validation_curves(
      {f'layers {config.layer_sizes}': history}, baseline['100'],
      os.path.join(fn_args.model_run_dir, PLOT_FILE))
  export(fn_args.serving_model_dir, tft_output, trainer)


def export(directory: str, tft_output: tft.TFTransformOutput,
           trainer: training.Trainer) -> None:
  """Saves both towers, the catalog titles and their embeddings."""
  query_model = QueryModel(tft_output, trainer.query_tower)
  tf.saved_model.save(query_model, os.path.join(directory, QUERY_TOWER_DIR),
                      signatures={'serving_default': query_model.embed})
  trainer.candidate_tower.save(os.path.join(directory, CANDIDATE_TOWER_DIR))
  with tf.io.gfile.GFile(os.path.join(directory, CATALOG_FILE), 'w') as file:
    json.dump(trainer.vocabularies.titles, file)
  with tf.io.gfile.GFile(os.path.join(directory, EMBEDDINGS_FILE), 'wb') as file:
    np.save(file, trainer.candidate_embeddings())
