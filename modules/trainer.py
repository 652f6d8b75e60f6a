"""run_fn: the Trainer's entry point (module path `modules.trainer.run_fn`).

It trains the two-tower model on the transformed examples, validates over the whole
catalog, and leaves behind:
  Model artifact:
    Format-Serving/   what the Pusher ships (modules/serving.py): the query tower with the
                      Transform graph inside, retrieval over the catalog, and in
                      assets.extra/ the catalog's titles and embeddings
    candidate_tower/  SavedModel: movie titles in, embeddings out; its embed_titles embeds
                      titles with their genres, new ones too (modules/catalog_refresh.py)
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
from typing import Dict, List, Sequence

import keras_tuner
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from modules import features, fitting, hparams, inputs, plots, serving
from shared import names

logger = logging.getLogger(f'{names.LOGGER}.trainer')


def run_fn(fn_args) -> None:
  """Trains the two-tower model and exports it: TFX Trainer's entry point.

  Args:
    fn_args: TFX's FnArgs: train_files and eval_files (the transformed examples),
      transform_graph_path, serving_model_dir, model_run_dir, hyperparameters (the Tuner's
      best, or None) and custom_config: names.TRAINING (the TrainingConfig as JSON),
      names.SERVING_K (the most titles a served query may ask for) and names.CATALOG_FILES
      (the catalog's examples, added by CatalogTrainer).

  Returns:
    None; writes the Model artifact and the ModelRun artifact's files (above).
  """
  started = time.monotonic()
  custom_config = fn_args.custom_config or {}
  config = training_config(custom_config, fn_args.hyperparameters)
  tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
  vocabularies, train, eval_ = inputs.load_training_inputs(
      tft_output, fn_args.train_files, fn_args.eval_files, custom_config[names.CATALOG_FILES],
      config)
  fit_started = time.monotonic()
  result = fitting.fit(config, vocabularies, train, eval_, log_dir=fn_args.model_run_dir)
  trained = time.monotonic()
  report = training_report(config, result, len(vocabularies.titles))
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  plot_validation(config, result, os.path.join(fn_args.model_run_dir, names.PLOT_FILE))
  export(fn_args.serving_model_dir, fn_args.model_run_dir, tft_output, result,
         vocabularies.titles, int(custom_config[names.SERVING_K]))
  # Where the Trainer's time went: reading and building, the epochs, the export and checks.
  set_up = fit_started - started + result.set_up_seconds
  report['seconds'] = {'set_up': round(set_up, 2),
                       'training': round(trained - started - set_up, 2),
                       'first_epoch': round(result.history[0]['seconds'], 2),  # first pair's
                       'export': round(time.monotonic() - trained, 2)}
  logger.info('Trainer: set-up %.1f s, training %.1f s (first epoch %.1f s), export %.1f s',
              *(report['seconds'][k] for k in ('set_up', 'training', 'first_epoch', 'export')))
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, names.HISTORY_FILE), 'w') as file:
    json.dump(report, file, indent=2)


def training_config(custom_config: Dict, hyperparameters) -> hparams.TrainingConfig:
  """The settings to train with: the pipeline's, with the Tuner's best over them.

  Args:
    custom_config: the Trainer's custom_config (names.TRAINING: a TrainingConfig as JSON).
    hyperparameters: the Tuner's best (a KerasTuner HyperParameters config), or None.

  Returns:
    The TrainingConfig.
  """
  config = hparams.TrainingConfig.from_json_dict(custom_config[names.TRAINING])
  if hyperparameters:
    tuned = keras_tuner.HyperParameters.from_config(hyperparameters).values
    logger.info('Training with the Tuner\'s best settings: %s', tuned)
    config = hparams.with_tuned(config, tuned)
  return config


def training_report(config: hparams.TrainingConfig, result: fitting.FitResult,
                    num_candidates: int) -> Dict:
  """history.json's figures (all but the seconds, which run_fn adds), and their log line.

  Args:
    config: the settings trained with.
    result: the fit.
    num_candidates: the catalog's titles.

  Returns:
    {config, history and best_epoch (the first pair's), final_val_top_k (the towers
    shipped), popularity_baseline_top_k, num_train, num_eval, num_validation, input_mode,
    num_candidates, and for an ensemble each pair's seed, best_epoch, final_val_top_k and
    history under 'pairs'}.
  """
  final, baseline = result.kept_top_k, result.popularity_baseline_top_k
  logger.info('Validation top-%s accuracy %.4f%s; most-popular baseline %.4f on the same '
              'ratings', names.GATE_KEY, final[names.GATE_KEY],
              ' (the pairs side by side)' if len(result.pairs) > 1 else '',
              baseline[names.GATE_KEY])
  report = {'config': config.to_json_dict(), 'history': result.history,
            'final_val_top_k': final, 'best_epoch': result.kept_epoch,
            'popularity_baseline_top_k': baseline,
            'num_train': result.num_train, 'num_eval': result.validation.num_eval,
            'num_validation': len(result.validation.true_index),
            'input_mode': result.input_mode, 'num_candidates': num_candidates}
  if len(result.pairs) > 1:  # history and best_epoch above are the first pair's
    report['pairs'] = [{'seed': pair.seed, 'best_epoch': pair.kept_epoch,
                        'final_val_top_k': pair.kept_top_k, 'history': pair.history}
                       for pair in result.pairs]
  return report


def plot_validation(config: hparams.TrainingConfig, result: fitting.FitResult,
                    path: str) -> None:
  """The validation curve of each pair, against the popularity baseline, as a PNG at
  `path`."""
  label = f'layers {config.layer_sizes}'
  plots.plot_validation_curves(
      {f'{label}, seed {pair.seed}' if len(result.pairs) > 1 else label: pair.history
       for pair in result.pairs}, result.popularity_baseline_top_k[names.GATE_KEY], path)


def export(serving_dir: str, model_run_dir: str, tft_output: tft.TFTransformOutput,
           result: fitting.FitResult, titles: List[str], k: int) -> None:
  """Saves the served model and, beside it, the candidate tower; then loads the saved model
  back and checks it against the trained one.

  Args:
    serving_dir: where the served model goes (the Model artifact's Format-Serving).
    model_run_dir: where the check's probe queries and answers go (names.EXPORT_CHECK_FILE).
    tft_output: Transform's output, which the served model embeds.
    result: the fit whose towers ship.
    titles: the catalog's titles, which the served model retrieves from.
    k: the most titles a served query may ask for (its default).

  Raises:
    RuntimeError: if the saved model does not reproduce the trained one.
  """
  model = serving.QueryModel(serving.QuerySide(tft_output, result.query_tower), titles,
                             fitting.embed_candidates(result.candidate_tower, titles), k)
  serving.export(serving_dir, model)
  result.candidate_tower.save(os.path.join(os.path.dirname(serving_dir),
                                           names.CANDIDATE_TOWER_DIR))
  probe = probe_queries([user.decode() for user in
                         tft_output.vocabulary_by_name(features.USER_VOCABULARY)[:7]])
  check = check_export(serving_dir, model, probe)
  with tf.io.gfile.GFile(os.path.join(model_run_dir, names.EXPORT_CHECK_FILE), 'w') as file:
    json.dump(check, file)


def probe_queries(known_users: Sequence[str]) -> Dict[str, np.ndarray]:
  """Queries that check an export: known users and an unknown one, at timestamps inside and
  far outside the data's.

  Args:
    known_users: a few ids of the user vocabulary.

  Returns:
    {serving input name: values}, every user at every timestamp.
  """
  users = list(known_users) + ['no-such-user']
  timestamps = [0, 880_000_000, 885_000_000, 890_000_000, 4_000_000_000]
  return {features.USER_ID: np.array(users * len(timestamps), dtype=object),
          features.TIMESTAMP: np.repeat(np.array(timestamps, dtype=np.int64), len(users))}


def check_export(directory: str, model: serving.QueryModel,
                 probe: Dict[str, np.ndarray], top: int = 10) -> Dict:
  """Checks that the saved model (loaded back) reproduces the in-memory one.

  Args:
    directory: the saved model.
    model: the in-memory model it was saved from.
    probe: queries, {serving input name: values}.
    top: best titles compared per query (capped at the model's maximum k); the saved model's
      `retrieve` is asked for as many.

  Returns:
    The probe queries with the in-memory model's embeddings and best `top` titles
    (names.EXPORT_CHECK_FILE's content).

  Raises:
    RuntimeError: if the saved model's embeddings or best titles differ.
  """
  queries = {name: tf.constant(values) for name, values in probe.items()}
  embeddings = model.embed(**queries)['embedding'].numpy()
  scores = embeddings @ model.candidates.numpy().T
  catalog = np.array([t.decode() for t in model.titles.numpy()], dtype=object)
  top = min(top, model.max_k)
  titles = catalog[np.argsort(-scores, axis=1, kind='stable')[:, :top]]
  loaded = tf.saved_model.load(directory)
  loaded_embeddings = loaded.signatures['embed'](**queries)['embedding'].numpy()
  loaded_titles = loaded.signatures['retrieve'](
      **queries, **{serving.K: tf.constant(top, tf.int32)})['titles'].numpy()
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
  return {features.USER_ID: list(probe[features.USER_ID]),
          features.TIMESTAMP: probe[features.TIMESTAMP].tolist(),
          'embedding': embeddings.tolist(), 'top_titles': titles.tolist()}

