"""data.synthetic: releases of any size in the 1M and CSV layouts, shaped like MovieLens."""
import collections

import pytest

from data import synthetic
from tests import synthetic as release_files


@pytest.fixture(scope='module', params=['grouplens-1m', 'grouplens-csv'])
def written(request, tmp_path_factory):
  directory = str(tmp_path_factory.mktemp(request.param))
  spec = synthetic.Spec(ratings=60_000, movies=2_000, groups=10, layout=request.param, seed=3)
  manifest = synthetic.write(spec, directory, say=lambda _: None)
  layout, tables = release_files.read_release(directory)
  return spec.resolved(), manifest, layout, tables


def test_it_reads_in_its_layout_with_the_counts_it_promises(written):
  spec, manifest, layout, tables = written
  assert layout.name == spec.layout == manifest['layout']
  assert len(tables['ratings']) == spec.ratings == manifest['rows']['ratings']
  assert len(tables['movies']) == spec.movies
  assert len(tables.get('users', [None] * spec.users)) == spec.users
  rated = {(r['user_id'], r['movie_id']) for r in tables['ratings']}
  assert len(rated) == spec.ratings  # nobody rates a movie twice
  movies = {m['movie_id'] for m in tables['movies']}
  assert {r['movie_id'] for r in tables['ratings']} <= movies


def test_it_has_the_skew_of_real_data(written):
  spec, _, _, tables = written
  per_user = collections.Counter(r['user_id'] for r in tables['ratings'])
  per_movie = collections.Counter(r['movie_id'] for r in tables['ratings'])
  assert min(per_user.values()) >= synthetic.MIN_RATINGS_PER_USER
  assert max(per_user.values()) > 5 * (spec.ratings / spec.users)  # a few heavy raters
  top = sum(count for _, count in per_movie.most_common(spec.movies // 10))
  assert top / spec.ratings > 0.25  # the top tenth of movies holds a large share


def test_users_mostly_rate_movies_of_their_own_taste_group(written):
  spec, _, _, tables = written
  own = sum((int(r['user_id']) - 1) % spec.groups == (int(r['movie_id']) - 1) % spec.groups
            for r in tables['ratings'])
  assert own / spec.ratings > 0.4  # where chance would give 1 in 10


def test_the_same_seed_writes_the_same_release(tmp_path):
  spec = synthetic.Spec(ratings=5_000, movies=500, layout='grouplens-1m', seed=7)
  first = synthetic.write(spec, str(tmp_path / 'a'), say=lambda _: None)
  second = synthetic.write(spec, str(tmp_path / 'b'), say=lambda _: None)
  assert first['sha256'] == second['sha256']


def test_an_impossible_release_is_refused():
  with pytest.raises(ValueError, match='do not fit'):
    synthetic.Spec(ratings=10_000, users=10, movies=100).resolved()


def test_a_higher_skew_gives_the_most_popular_movies_more_of_the_ratings(tmp_path):
  def top_share(skew):
    spec = synthetic.Spec(ratings=20_000, movies=1_000, layout='grouplens-1m', skew=skew, seed=5)
    directory = str(tmp_path / str(skew))
    synthetic.write(spec, directory, say=lambda _: None)
    ratings = release_files.read_release(directory)[1]['ratings']
    per_movie = collections.Counter(r['movie_id'] for r in ratings)
    return sum(count for _, count in per_movie.most_common(100)) / spec.ratings
  # The top tenth's share of 20,000 ratings: 0.20, 0.26 and 0.30 at these exponents (seed 5).
  flat, default, steep = top_share(0.6), top_share(synthetic.Spec.skew), top_share(1.2)
  assert flat + 0.03 < default < steep - 0.03
