"""The features every MovieLens layout is read into: TensorFlow Datasets' names and encodings.

TFRS users know these names from `tfds.load('movielens/100k-ratings')`, so the examples
keep them, and keep TFDS' encodings: genres as ids into `GENRES`, gender as 1 for male.
"""

# Rating features.
USER_ID = 'user_id'
MOVIE_ID = 'movie_id'
USER_RATING = 'user_rating'
TIMESTAMP = 'timestamp'

# Movie features (the catalog).
MOVIE_TITLE = 'movie_title'
MOVIE_GENRES = 'movie_genres'

# User features (MovieLens 100k and 1M; 25M has none).
RAW_USER_AGE = 'raw_user_age'
BUCKETIZED_USER_AGE = 'bucketized_user_age'
USER_GENDER = 'user_gender'
USER_OCCUPATION_TEXT = 'user_occupation_text'
USER_ZIP_CODE = 'user_zip_code'

# TFDS' genre labels; a movie's genres are ids into this list.
GENRES = (
    'Action', 'Adventure', 'Animation', 'Children', 'Comedy', 'Crime', 'Documentary',
    'Drama', 'Fantasy', 'Film-Noir', 'Horror', 'IMAX', 'Musical', 'Mystery', 'Romance',
    'Sci-Fi', 'Thriller', 'Unknown', 'War', 'Western', '(no genres listed)')
GENRE_IDS = {name: index for index, name in enumerate(GENRES)}
# Spellings of the raw files that differ from TFDS' labels.
GENRE_ALIASES = {"Children's": 'Children', 'unknown': 'Unknown'}

# MovieLens 1M's age groups (lower bounds); TFDS buckets 100k's raw ages the same way.
AGE_BUCKETS = (1, 18, 25, 35, 45, 50, 56)


def genre_id(name: str) -> int:
  """TFDS' id of a genre as spelled in any MovieLens file; KeyError for an unknown genre."""
  return GENRE_IDS[GENRE_ALIASES.get(name, name)]


def bucketize_age(age: float) -> float:
  """The lower bound of the MovieLens 1M age group that `age` falls in."""
  return float(max(bound for bound in AGE_BUCKETS if bound <= max(age, 1)))
