"""Drift between runs and skew between splits stop the real pipeline at the ValidationGate,
before Transform, unless accepted (components/drift.py; runs stop --until the gate)."""
import json
import os
import random

import pytest
from tensorflow_data_validation.utils import anomalies_util

from components import drift
from components.validation_gate import VALIDATED_STATISTICS_KEY
from shared import names
from tests import synthetic
from tests.pipeline_run import run_pipeline

UNTIL_GATE = ('--until', names.VALIDATION_GATE)


def concentrate(release: synthetic.Release, titles: int = 10, share: float = 0.5,
                seed: int = 0) -> synthetic.Release:
  """The same release with `share` of its ratings moved onto `titles` movies: a release
  whose title distribution is shifted (the users, their counts and the catalog stay)."""
  rng = random.Random(seed)
  targets = [movie.movie_id for movie in release.movies[-titles:]]
  pairs = {}
  for rating in release.ratings:
    movie = rng.choice(targets) if rng.random() < share else rating.movie_id
    pairs[(rating.user_id, movie)] = synthetic.Rating(rating.user_id, movie, rating.rating,
                                                      rating.timestamp)
  return synthetic.Release(release.users, release.movies, list(pairs.values()))


def split_pairs(artifact):
  """The split pairs a DistributionValidator compared (none without a baseline)."""
  return json.loads(artifact.properties.get('split_names') or '[]')


def distances(run, component: str):
  """{(split pair, feature): measured distance} of a DistributionValidator of a run."""
  artifact = run.outputs()[f'{component}.anomalies']
  found = {}
  for pair in split_pairs(artifact):
    anomalies = anomalies_util.load_anomalies_binary(
        os.path.join(artifact.uri, f'SplitPair-{pair}', drift.ANOMALIES_FILE))
    for info in anomalies.drift_skew_info:
      [measurement] = info.drift_measurements
      found[(pair, info.path.step[0])] = measurement.value
  return found


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """A release, then another seed's sample of the same distribution, then a release whose
  ratings are concentrated on ten titles (stopped, accepted, then run again), on one output
  dir."""
  root = tmp_path_factory.mktemp('drift')
  output_dir = str(root / 'out')
  releases = {'first': synthetic.make_clustered_release(seed=0),
              'resampled': synthetic.make_clustered_release(seed=1)}
  releases['shifted'] = concentrate(releases['resampled'])
  done = {}
  for name, release, flags in (('first', 'first', ()), ('resampled', 'resampled', ()),
                               ('shifted', 'shifted', ()),
                               ('accepted', 'shifted', ('--accept-drift',)),
                               ('again', 'shifted', ())):
    data_dir = str(root / release)
    if not os.path.isdir(data_dir):  # written once: ExampleGen fingerprints the files
      synthetic.write_grouplens_100k(releases[release], data_dir)
    done[name] = run_pipeline(data_dir, output_dir, *UNTIL_GATE, *flags)
  return done


def test_a_first_run_has_no_baseline_and_passes(runs):
  run = runs['first']
  assert run.exit_code == 0, run.stderr
  outputs = run.outputs()
  assert split_pairs(outputs[f'{names.DRIFT_VALIDATOR}.anomalies']) == []  # nothing compared
  skew = distances(run, names.SKEW_VALIDATOR)
  assert set(skew) == {('eval_train', feature) for feature in drift.DRIFT_FEATURES}
  assert max(skew.values()) < run.config.validation.max_skew
  validated = outputs[f'{names.VALIDATION_GATE}.{VALIDATED_STATISTICS_KEY}']
  assert validated.properties[names.ACCEPTED_DRIFT] == ''


def test_another_sample_of_the_same_distribution_does_not_trip_it(runs):
  run = runs['resampled']
  assert run.exit_code == 0, run.stderr
  measured = distances(run, names.DRIFT_VALIDATOR)
  assert set(measured) == {('train_train', feature) for feature in drift.DRIFT_FEATURES}
  # Each comparator measures (another sample is never identical), far below the threshold.
  assert 0 < min(measured.values())
  assert max(measured.values()) < run.config.validation.max_drift / 2


def test_a_shifted_title_distribution_stops_the_run_before_transform(runs):
  run = runs['shifted']
  assert run.exit_code == 1
  assert 'The data drifted beyond the thresholds (1 findings); training stops here' in run.stderr
  line = next(line for line in run.stderr.splitlines()
              if 'train split against the train split of the latest validated run' in line)
  assert 'feature movie_title: The Linfty distance between current and previous is' in line
  assert f'above the threshold {run.config.validation.max_drift}' in line
  assert 'run again with --accept-drift' in run.stderr
  for feature in set(drift.DRIFT_FEATURES) - {'movie_title'}:
    assert f'feature {feature}:' not in run.stderr
  assert 'Transform' not in run.outputs() and names.TRANSFORM not in run.stdout.split(
      names.VALIDATION_GATE)[-1]


def test_accept_drift_lets_it_go_on_and_records_what_it_accepted(runs):
  run = runs['accepted']
  assert run.exit_code == 0, run.stderr
  measured = distances(run, names.DRIFT_VALIDATOR)
  assert measured[('train_train', 'movie_title')] > run.config.validation.max_drift
  accepted = run.outputs()[f'{names.VALIDATION_GATE}.{VALIDATED_STATISTICS_KEY}'].properties[
      names.ACCEPTED_DRIFT]
  assert 'feature movie_title: The Linfty distance' in accepted


def test_an_accepted_release_is_the_next_baseline_and_only_the_checks_run_again(runs):
  run = runs['again']
  assert run.exit_code == 0, run.stderr
  assert max(distances(run, names.DRIFT_VALIDATOR).values()) == 0
  # The resolver queries; the drift check and the gate see a new baseline; the rest is cached.
  assert 'Done: 8 components, 3 ran, 5 reused from the cache' in run.stdout
