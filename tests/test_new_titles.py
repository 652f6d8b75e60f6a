"""New titles without retraining (docs/serving.md, "New titles without retraining"): a
synthetic release is trained on with some of its movies left out, then the full release's
catalog is served by `--refresh-catalog`; a release that changes a known title's genres is
refused. The candidate tower's `embed_titles` is checked against its `call` directly."""
import contextlib
import copy
import io
import os

import numpy as np
import pytest
import tensorflow as tf

from modules import catalog_refresh, hparams, model, serving
from pipeline import configs
from shared import names
from tests import synthetic
from tests.conftest import QUICK_TRAINING
from tests.pipeline_run import inspect_at, run_pipeline

NEW_MOVIES = 10  # the release's last movies: added after the first run
K = configs.Serving().serving_k  # the refreshed model's maximum k: the default


def test_embed_titles_matches_call_on_the_catalog_and_reads_a_new_titles_genres():
  config = hparams.preset('recommended', layer_sizes=[8], embedding_dim=4, dropout=0.0)
  titles = ['Alpha (1995)', 'Beta Gamma (1996)', 'No Year']
  genres = [[0, 4], [7], []]
  tower = model.CandidateTower(titles, ['alpha', 'beta', 'gamma', 'new'], config, genres)
  catalog = tower(tf.constant(titles)).numpy()
  tower.average_unknown()
  padded = tf.constant([[0, 4], [7, -1], [-1, -1]], tf.int64)
  np.testing.assert_allclose(tower.embed_titles(tf.constant(titles), padded).numpy(), catalog,
                             atol=1e-6)
  unknown = tf.constant(['New (1995)'] * 3)
  by_genre = tower.embed_titles(unknown, tf.constant([[0, -1], [7, -1], [0, 99]], tf.int64))
  assert np.abs(by_genre[0] - by_genre[1]).max() > 1e-6  # its genres count
  np.testing.assert_allclose(by_genre[0], by_genre[2], atol=1e-6)  # a genre never seen: none
  by_year = tower.embed_titles(tf.constant(['New (1995)', 'New (1996)']),
                               tf.constant([[0], [0]], tf.int64))
  assert np.abs(by_year[0] - by_year[1]).max() > 1e-6  # and its year
  rows = tower.title_embedding.embeddings.numpy()
  np.testing.assert_allclose(rows[0], rows[1:].mean(axis=0), atol=1e-6)


def test_the_check_refuses_a_known_title_that_moved_and_accepts_new_ones():
  served = ['A (1995)', 'B (1996)', 'C (1997)']
  served_embeddings = np.arange(12, dtype=np.float32).reshape(3, 4)
  titles = ['A (1995)', 'C (1997)', 'New (1998)']  # B left the catalog, New came
  embeddings = np.stack([served_embeddings[0], served_embeddings[2] + 5e-5, np.ones(4)])
  assert catalog_refresh.check_known_titles(titles, embeddings, served,
                                            served_embeddings) == pytest.approx(5e-5, rel=0.1)
  embeddings[1, 3] += 0.01
  with pytest.raises(catalog_refresh.CatalogChangedError,
                     match=r"1 of the 2 titles .*by up to 0\.01.*e\.g\. 'C \(1997\)'"):
    catalog_refresh.check_known_titles(titles, embeddings, served, served_embeddings)


def _without_new_movies(release: synthetic.Release) -> synthetic.Release:
  kept = release.movies[:-NEW_MOVIES]
  ids = {movie.movie_id for movie in kept}
  return synthetic.Release(release.users, kept,
                           [rating for rating in release.ratings if rating.movie_id in ids])


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """(the trained run, the refresh, the refused refresh, the release's titles added)."""
  root = tmp_path_factory.mktemp('new-titles')
  full = synthetic.make_clustered_release()
  old = synthetic.write_grouplens_100k(_without_new_movies(full), str(root / 'old'))
  new = synthetic.write_grouplens_100k(full, str(root / 'new'))
  changed = copy.deepcopy(full)
  movie = changed.movies[5]
  movie.genres = ['Western'] if movie.genres != ['Western'] else ['Drama']
  changed_dir = synthetic.write_grouplens_100k(changed, str(root / 'changed'))
  output_dir = str(root / 'outputs')
  trained = run_pipeline(old, output_dir, *QUICK_TRAINING, '--ensemble', '2', '--epochs', '2')
  assert trained.exit_code == 0, trained.stderr
  refreshed = run_pipeline(new, output_dir, '--refresh-catalog')
  refused = run_pipeline(changed_dir, output_dir, '--refresh-catalog')
  return trained, refreshed, refused, [m.title for m in full.movies[-NEW_MOVIES:]]


def _pushed(run) -> str:
  pushed = run.outputs()[f'{names.PUSHER}.pushed_model']
  assert pushed.properties[names.PUSHED] == 1
  return pushed.properties[names.PUSHED_DESTINATION]


def test_the_refresh_pushes_a_version_whose_retrieve_returns_the_new_titles(runs):
  trained, refreshed, _, new_titles = runs
  assert refreshed.exit_code == 0, refreshed.stderr
  before, after = _pushed(trained), _pushed(refreshed)
  assert os.path.dirname(before) == os.path.dirname(after) and before != after
  served_before, _ = serving.read_catalog(before)
  titles, embeddings = serving.read_catalog(after)
  assert not set(new_titles) & set(served_before)
  assert set(titles) == set(served_before) | set(new_titles)
  loaded = tf.saved_model.load(after)
  users = [str(user) for user in range(1, 121)]
  query = {'user_id': tf.constant(users), 'timestamp': tf.constant([880_000_000] * 120, tf.int64)}
  answer = loaded.signatures['retrieve'](**query, k=tf.constant(K))
  returned = {title.decode() for row in answer['titles'].numpy() for title in row}
  assert returned & set(new_titles)  # some users' top 100 holds new titles
  # Scored as the exported catalog says: the query embedding against each title's.
  queries = loaded.signatures['embed'](**query)['embedding'].numpy()
  best = np.sort(queries @ embeddings.T, axis=1)[:, ::-1][:, :K]
  np.testing.assert_allclose(answer['scores'].numpy(), best, rtol=1e-5, atol=1e-5)
  assert set(loaded.signatures) == set(tf.saved_model.load(before).signatures)


def test_the_known_titles_and_the_queries_are_served_as_before(runs):
  trained, refreshed, _, _ = runs
  before, after = _pushed(trained), _pushed(refreshed)
  old_titles, old_embeddings = serving.read_catalog(before)
  titles, embeddings = serving.read_catalog(after)
  row = {title: index for index, title in enumerate(titles)}
  np.testing.assert_array_equal(embeddings[[row[title] for title in old_titles]], old_embeddings)
  query = {'user_id': tf.constant(['1', '7', 'stranger']),
           'timestamp': tf.constant([880_000_000, 885_000_000, 0], tf.int64)}
  np.testing.assert_array_equal(
      tf.saved_model.load(after).signatures['embed'](**query)['embedding'].numpy(),
      tf.saved_model.load(before).signatures['embed'](**query)['embedding'].numpy())


def test_a_catalog_that_changes_a_known_title_is_refused_and_nothing_is_pushed(runs):
  _, refreshed, refused, _ = runs
  assert refused.exit_code == 1
  assert 'CatalogChangedError' in refused.stderr
  assert "1 of the 300 titles the blessed model serves would change" in refused.stderr
  serving_dir = os.path.dirname(_pushed(refreshed))
  assert sorted(os.listdir(serving_dir))[-1] == os.path.basename(_pushed(refreshed))


def test_the_refresh_is_a_run_the_inspector_shows(runs):
  code, out, err = inspect_at(runs[1].config.local.output_dir, 'runs')
  assert code == 0, err
  assert names.CATALOG_REFRESH in out


def test_the_kubeflow_runner_compiles_the_refresh(tmp_path):
  import runner_kubeflow
  from tools.kfp_local import CompiledPipeline
  output_file = str(tmp_path / 'pipeline.json')
  with contextlib.redirect_stdout(io.StringIO()):
    assert runner_kubeflow.main(['--refresh-catalog', '--output-file', output_file,
                                 '--output-dir', 'gs://bucket/movielens']) == 0
  tasks = CompiledPipeline(output_file).tasks
  assert names.TRAINER not in tasks and names.TRANSFORM not in tasks
  assert set(tasks[names.CATALOG_REFRESH].dependent_tasks) == {
      names.EXAMPLE_GEN, f'{names.BLESSED_MODEL_RESOLVER}-model-resolver'}
  assert set(tasks[names.PUSHER].dependent_tasks) == {names.CATALOG_REFRESH, names.EVALUATOR}
