"""The readers: every layout reads into the same rows; every bad line is named and explained."""

import pytest

from data import features
from data import layouts
from tests import synthetic


read_release = synthetic.read_release


@pytest.fixture(scope='module')
def release():
  return synthetic.make_release(num_users=12, num_movies=15, num_ratings=80, seed=3)


@pytest.mark.parametrize('layout_name', sorted(synthetic.WRITERS))
def test_every_layout_is_detected_and_reads_every_row(layout_name, release, tmp_path):
  layout, tables = read_release(synthetic.WRITERS[layout_name](release, str(tmp_path)))
  assert layout.name == layout_name
  assert len(tables['ratings']) == len(release.ratings)
  assert len(tables['movies']) == len(release.movies)
  assert len(tables.get('users', release.users)) == len(release.users)
  first = tables['movies'][0]
  assert first[features.MOVIE_TITLE] == 'Misérables, Les (1991)'  # decoded from latin-1 or UTF-8
  expected_genres = sorted(features.genre_id(g) for g in release.movies[0].genres)
  assert first[features.MOVIE_GENRES] == expected_genres


def test_grouplens_and_recbole_layouts_give_identical_rows(release, tmp_path):
  _, grouplens = read_release(synthetic.write_grouplens_100k(release, str(tmp_path / 'g')))
  _, recbole = read_release(synthetic.write_recbole_100k(release, str(tmp_path / 'r')))
  assert grouplens == recbole


def test_records_use_tfds_names_and_encodings(release, tmp_path):
  _, tables = read_release(synthetic.write_grouplens_100k(release, str(tmp_path)))
  rating, user = tables['ratings'][0], tables['users'][0]
  source_rating, source_user = release.ratings[0], release.users[0]
  assert rating == {features.USER_ID: str(source_rating.user_id),
                    features.MOVIE_ID: str(source_rating.movie_id),
                    features.USER_RATING: float(source_rating.rating),
                    features.TIMESTAMP: source_rating.timestamp}
  assert user == {features.USER_ID: str(source_user.user_id),
                  features.RAW_USER_AGE: float(source_user.age),
                  features.BUCKETIZED_USER_AGE: features.bucketize_age(source_user.age),
                  features.USER_GENDER: int(source_user.gender == 'M'),
                  features.USER_OCCUPATION_TEXT: source_user.occupation,
                  features.USER_ZIP_CODE: source_user.zip_code}


def test_1m_users_have_age_groups_and_occupation_text(release, tmp_path):
  _, tables = read_release(synthetic.write_grouplens_1m(release, str(tmp_path)))
  user = tables['users'][0]
  assert features.RAW_USER_AGE not in user
  assert user[features.BUCKETIZED_USER_AGE] == features.bucketize_age(release.users[0].age)
  assert user[features.USER_OCCUPATION_TEXT] == 'college/grad student'


@pytest.mark.parametrize('age, bucket', [(7, 1), (17, 1), (18, 18), (24, 18), (25, 25),
                                         (49, 45), (50, 50), (56, 56), (73, 56)])
def test_age_buckets_follow_movielens_1m(age, bucket):
  assert features.bucketize_age(age) == bucket


@pytest.mark.parametrize('name, value, label', [
    (features.USER_GENDER, 1, 'M'), (features.USER_GENDER, 0, 'F'),
    (features.BUCKETIZED_USER_AGE, 18.0, '18-24'), (features.BUCKETIZED_USER_AGE, 56.0, '56+'),
    (features.BUCKETIZED_USER_AGE, 19.0, '19.0'),  # not an age group: shown as it is
    (features.USER_OCCUPATION_TEXT, b'writer', 'writer')])
def test_the_registry_labels_the_evaluators_slices(name, value, label):
  assert [feature.name for feature in features.SLICED] == [
      features.BUCKETIZED_USER_AGE, features.USER_GENDER, features.USER_OCCUPATION_TEXT]
  assert features.slice_label(features.BY_NAME[name], value) == label


def test_recbole_rebuilds_grouplens_titles():
  movies = layouts.RECBOLE_100K.movies
  assert layouts.parse_line(movies, '1\tToy Story\t1995\tAnimation Children\'s Comedy') == {
      features.MOVIE_ID: '1', features.MOVIE_TITLE: 'Toy Story (1995)',
      features.MOVIE_GENRES: [features.GENRE_IDS['Animation'], features.GENRE_IDS['Children'],
                       features.GENRE_IDS['Comedy']]}
  # The copy's quirks: movie 267 and the one title with a parenthesis after its year.
  assert layouts.parse_line(movies, '267\tunkonwn\tunkonwn\tunknown')[features.MOVIE_TITLE] == (
      'unknown')
  assert layouts.parse_line(
      movies, '1412\tLand Before Time III: The Time of the Great Giving (1995)\tV\t'
      "Animation Children's")[features.MOVIE_TITLE] == (
          'Land Before Time III: The Time of the Great Giving (1995) (V)')


@pytest.mark.parametrize('table, line', [
    (layouts.GROUPLENS_100K.ratings, '196\t242\t3\t881250949'),
    (layouts.GROUPLENS_100K.movies,
     '|'.join(['1', 'Toy Story (1995)', '', '', ''] + list('0001110000000000000'))),
    (layouts.GROUPLENS_100K.users, '2|53|F|other|94043'),
    (layouts.RECBOLE_100K.ratings, '196\t242\t3\t881250949'),
    (layouts.RECBOLE_100K.movies, "1\tToy Story\t1995\tAnimation Children's Comedy"),
    (layouts.RECBOLE_100K.movies, '267\tunkonwn\tunkonwn\tunknown'),
    (layouts.RECBOLE_100K.movies, '1412\tLand Before Time III (1995)\tV\tAnimation'),
    (layouts.RECBOLE_100K.users, '1\t24\tM\ttechnician\t85711'),
    (layouts.GROUPLENS_1M.ratings, '1::1193::5::978300760'),
    (layouts.GROUPLENS_1M.movies, "1::Toy Story (1995)::Animation|Children's|Comedy"),
    (layouts.GROUPLENS_1M.users, '2::M::56::16::70072'),
    (layouts.GROUPLENS_CSV.ratings, '1,296,5.0,1147880044'),
    (layouts.GROUPLENS_CSV.ratings, '1,306,3.5,1147868817'),
    (layouts.GROUPLENS_CSV.movies, '11,"American President, The (1995)",Comedy|Drama|Romance'),
    (layouts.GROUPLENS_CSV.movies, '1,Toy Story (1995),Adventure|Animation|Children'),
])
def test_a_record_is_written_as_the_line_it_was_read_from(table, line, tmp_path):
  """One definition reads and writes: a line read and written again is the same line."""
  path = tmp_path / table.file_name
  layouts.write_table(str(path), table, [layouts.parse_line(table, line)])
  header = [table.header] if table.header else []
  assert path.read_bytes() == '\n'.join(header + [line, '']).encode(table.encoding)


@pytest.mark.parametrize('table, line, message', [
    (layouts.GROUPLENS_100K.ratings, '1\t2\t3', 'expected 4 tab-separated fields'),
    (layouts.GROUPLENS_100K.ratings, 'x\t2\t3\t881250949', "user id 'x' is not a number"),
    (layouts.GROUPLENS_100K.ratings, '1\tB\t3\t881250949', "movie id 'B' is not a number"),
    (layouts.GROUPLENS_100K.ratings, '1\t2\t3\tyesterday', "timestamp 'yesterday' is not a"),
    (layouts.GROUPLENS_100K.ratings, '1\t2\t3\t-5', 'not a whole number of seconds'),
    (layouts.GROUPLENS_100K.ratings, '1\t2\tgood\t881250949', "rating 'good' is not a number"),
    (layouts.GROUPLENS_100K.ratings, '1\t2\t9\t881250949', 'outside the MovieLens scale'),
    (layouts.GROUPLENS_100K.movies, '1|Toy Story (1995)|x', 'expected 24'),
    (layouts.GROUPLENS_100K.movies, '1|T (1995)|d||u|' + '|'.join('2' * 19), 'must be 0 or 1'),
    (layouts.GROUPLENS_100K.users, '1|24|X|writer|12345', "gender 'X' is neither M nor F"),
    (layouts.GROUPLENS_100K.users, '1|old|M|writer|12345', "age 'old' is not a whole number"),
    (layouts.GROUPLENS_1M.users, '1::M::19::4::12345', "age group '19' is not one of"),
    (layouts.GROUPLENS_1M.users, '1::M::18::42::12345', "occupation code '42'"),
    (layouts.GROUPLENS_1M.movies, '1::Toy Story (1995)::Cartoon', "unknown genre 'Cartoon'"),
    (layouts.GROUPLENS_CSV.ratings, '1,2,3', 'expected 4 comma-separated fields'),
])
def test_bad_lines_say_what_is_wrong(table, line, message):
  with pytest.raises(layouts.RowError, match=message):
    layouts.parse_line(table, line)


def test_a_file_in_another_layout_fails_on_its_header():
  with pytest.raises(layouts.RowError, match='is this file in another layout'):
    layouts.parse_line(layouts.RECBOLE_100K.ratings, '196\t242\t3\t881250949', first_line=True)


def test_undecodable_line_is_reported_not_dropped(tmp_path):
  path = tmp_path / 'ml-100k.item'
  path.write_bytes('item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n'
                   .encode() + b'1\tCaf\xe9\t1995\tDrama\n2\tOk\t1996\tDrama\n')
  records, bad = layouts.read_table(str(path), layouts.RECBOLE_100K.movies)
  assert [r[features.MOVIE_TITLE] for r in records] == ['Ok (1996)']
  assert bad == [(2, "not valid utf-8: invalid continuation byte at byte 5")]


def test_detect_layout_names_what_is_missing(tmp_path):
  with pytest.raises(layouts.LayoutError, match='lacks u.user'):
    layouts.detect_layout('d', ['u.data', 'u.item'])
  with pytest.raises(layouts.LayoutError, match='holds no MovieLens ratings file'):
    layouts.detect_layout('d', ['ratings.txt'])
  with pytest.raises(layouts.LayoutError, match='several layouts'):
    layouts.detect_layout('d', ['u.data', 'u.item', 'u.user', 'ratings.dat'])
  with pytest.raises(layouts.LayoutError, match="unknown layout 'ml-7m'"):
    layouts.detect_layout('d', ['u.data'], 'ml-7m')
  with pytest.raises(layouts.LayoutError, match='is not a directory'):
    layouts.list_files(str(tmp_path / 'nowhere'))
