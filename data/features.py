"""The feature registry: every feature of the examples, declared once, in `FEATURES`.

An entry says what ExampleGen writes (the name, the dtype, one value or a list, which file
of a release gives it) and what the rest of the pipeline does with it: which tower reads
it, the rule by which preprocessing_fn transforms it, what a serving request sends when it
does not know it, and how the Evaluator labels its slices. ExampleGen, preprocessing_fn
(modules/preprocessing.py), the model's inputs (modules/features.py), the serving
signatures (modules/serving.py) and the Evaluator's slices all read this table, so adding
a user feature is one entry here (docs/model.md, "Adding a feature").

The names and encodings are TensorFlow Datasets' (TFRS users know them from
`tfds.load('movielens/100k-ratings')`): genres as ids into `GENRES`, gender as 1 for male.
A leaf of the data layer: no TensorFlow, so the readers and the fetcher stay light.
"""
import dataclasses
from typing import Dict, Mapping, Optional, Tuple, Union

# Rating features.
USER_ID = 'user_id'
MOVIE_ID = 'movie_id'
USER_RATING = 'user_rating'
TIMESTAMP = 'timestamp'

# Movie features (the catalog).
MOVIE_TITLE = 'movie_title'
MOVIE_GENRES = 'movie_genres'

# User features (MovieLens 100k and 1M; 20M and 25M have none).
RAW_USER_AGE = 'raw_user_age'
BUCKETIZED_USER_AGE = 'bucketized_user_age'
USER_GENDER = 'user_gender'
USER_OCCUPATION_TEXT = 'user_occupation_text'
USER_ZIP_CODE = 'user_zip_code'

# Transformed features: what preprocessing_fn gives the towers.
USER_INDEX = 'user_index'  # index into the user-id vocabulary; the last index is "unknown"
TIMESTAMP_BUCKET = 'timestamp_bucket'  # equal-width bucket between the data's min and max
TIMESTAMP_Z = 'timestamp_z'  # z-score
USER_AGE_INDEX = 'user_age_index'
USER_GENDER_INDEX = 'user_gender_index'
USER_OCCUPATION_INDEX = 'user_occupation_index'
USER_ZIP_INDEX = 'user_zip_index'
# Vocabularies Transform writes (tft.TFTransformOutput.vocabulary_file_by_name) under a name
# of their own; a user feature's vocabulary is named as its index.
USER_VOCABULARY = 'user_id'
TITLE_TOKEN_VOCABULARY = 'movie_title_tokens'

# Buckets and labels.
# TFDS' genre labels; a movie's genres are ids into this list.
GENRES = (
    'Action', 'Adventure', 'Animation', 'Children', 'Comedy', 'Crime', 'Documentary',
    'Drama', 'Fantasy', 'Film-Noir', 'Horror', 'IMAX', 'Musical', 'Mystery', 'Romance',
    'Sci-Fi', 'Thriller', 'Unknown', 'War', 'Western', '(no genres listed)')
GENRE_IDS = {name: index for index, name in enumerate(GENRES)}
# Spellings of the GroupLens files that differ from TFDS' labels.
GENRE_ALIASES = {"Children's": 'Children', 'unknown': 'Unknown'}
# MovieLens 1M's age groups, by their lower bound; TFDS buckets 100k's raw ages the same way.
AGE_GROUPS = {1: '1-17', 18: '18-24', 25: '25-34', 35: '35-44', 45: '45-49', 50: '50-55',
              56: '56+'}
AGE_BUCKETS = tuple(AGE_GROUPS)
# The encoded gender and its letter, as GroupLens' files and the Evaluator's slices write it.
GENDERS = {0: 'F', 1: 'M'}

# dtypes, as tf.train.Feature lists hold them (and tf.as_dtype reads them).
STRING, INT64, FLOAT32 = 'string', 'int64', 'float32'
# Which file of a release gives a feature.
RATING, MOVIE, USER = 'rating', 'movie', 'user'
# Which tower reads a feature (through its transformed features).
QUERY, CANDIDATE = 'query', 'candidate'


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """Transform's rule for a feature read as an index into the vocabulary of its training
  values, with one more index, the last, for "unknown": a value training never saw, or a
  request that does not carry it. Numbers are indexed as the text of their integer part.

  Attributes:
    index: the transformed feature.
    file: the vocabulary's name in Transform's output; None names it as `index`.
    prefix: index only the first characters of the stripped, upper-cased text (zip codes:
      their first two characters are a region; a whole code is nearly unique to its user).
  """
  index: str
  file: Optional[str] = None
  prefix: Optional[int] = None

  @property
  def file_name(self) -> str:
    return self.file or self.index


@dataclasses.dataclass(frozen=True)
class Timeline:
  """Transform's rule for the timestamp, as the tutorial's Discretization layer and its
  normalization: equal-width buckets between the training data's minimum and maximum, and
  the z-score, both of the value clipped to that range (a request from 1970 or 2030 gets the
  nearest end's values, not an extrapolated z-score)."""
  buckets: str
  z_score: str


@dataclasses.dataclass(frozen=True)
class Titles:
  """Transform's rule for the title: it passes through (the candidate tower reads titles),
  and the vocabulary of the titles' words is written for the model, which applies it, so
  that the same lookup serves training examples and the catalog. (The title lookup itself
  is the catalog's, and each title's training count the Trainer's own: neither needs a pass
  of Transform's analysis.)"""
  token_vocabulary: str  # the titles' words, the most frequent first


Rule = Union[Vocabulary, Timeline, Titles]


@dataclasses.dataclass(frozen=True)
class Feature:
  """One feature of the examples ExampleGen writes.

  Attributes:
    name: the feature's name in the examples, the schema and the serving requests.
    dtype: STRING, INT64 or FLOAT32.
    source: RATING, MOVIE or USER: which file of a release gives it.
    varlen: a list of values (a movie's genres) rather than one value.
    tower: QUERY or CANDIDATE: the tower that reads it; None for a feature only kept in
      the examples.
    rule: how preprocessing_fn transforms it (Vocabulary, Timeline or Titles); None for a
      feature preprocessing_fn does not read (the candidate tower reads genres from the
      catalog).
    unknown: for a query feature, what a request sends when it does not know the value
      (the model then queries the average of what it learned); None for a feature every
      request must carry.
    slice_labels: for a feature the Evaluator slices top-K by, its values' labels ({} to
      label a value by its text); None for a feature it does not slice by.
  """
  name: str
  dtype: str
  source: str
  varlen: bool = False
  tower: Optional[str] = None
  rule: Optional[Rule] = None
  unknown: object = None
  slice_labels: Optional[Mapping[int, str]] = None

  @property
  def transformed(self) -> Tuple[str, ...]:
    """The names of the transformed features preprocessing_fn makes of this one."""
    if isinstance(self.rule, Vocabulary):
      return (self.rule.index,)
    if isinstance(self.rule, Timeline):
      return (self.rule.buckets, self.rule.z_score)
    if isinstance(self.rule, Titles):
      return (self.name,)
    return ()

  @property
  def optional(self) -> bool:
    """A query feature a request may leave out (it has an "unknown" value)."""
    return self.unknown is not None


FEATURES: Tuple[Feature, ...] = (
    Feature(USER_ID, STRING, RATING, tower=QUERY,
            rule=Vocabulary(USER_INDEX, file=USER_VOCABULARY)),
    Feature(MOVIE_ID, STRING, RATING),  # joins a rating to its movie; not a model input
    Feature(USER_RATING, FLOAT32, RATING),  # retrieval learns from what was rated, not how
    Feature(TIMESTAMP, INT64, RATING, tower=QUERY,
            rule=Timeline(TIMESTAMP_BUCKET, TIMESTAMP_Z)),
    Feature(MOVIE_TITLE, STRING, MOVIE, tower=CANDIDATE,
            rule=Titles(TITLE_TOKEN_VOCABULARY)),
    Feature(MOVIE_GENRES, INT64, MOVIE, varlen=True, tower=CANDIDATE),
    Feature(RAW_USER_AGE, FLOAT32, USER),  # 100k only: the model reads the age group
    Feature(BUCKETIZED_USER_AGE, FLOAT32, USER, tower=QUERY, rule=Vocabulary(USER_AGE_INDEX),
            unknown=-1.0, slice_labels=AGE_GROUPS),
    Feature(USER_GENDER, INT64, USER, tower=QUERY, rule=Vocabulary(USER_GENDER_INDEX),
            unknown=-1, slice_labels=GENDERS),
    Feature(USER_OCCUPATION_TEXT, STRING, USER, tower=QUERY,
            rule=Vocabulary(USER_OCCUPATION_INDEX), unknown='', slice_labels={}),
    Feature(USER_ZIP_CODE, STRING, USER, tower=QUERY, rule=Vocabulary(USER_ZIP_INDEX, prefix=2),
            unknown=''),
)
BY_NAME: Dict[str, Feature] = {feature.name: feature for feature in FEATURES}
# The query features a request may leave out, in the order of the serving signatures' inputs.
OPTIONAL_QUERY_FEATURES = tuple(feature for feature in FEATURES
                                if feature.tower == QUERY and feature.optional)
# The features the Evaluator slices top-K by (when a release has them).
SLICED = tuple(feature for feature in FEATURES if feature.slice_labels is not None)


def slice_label(feature: Feature, value) -> str:
  """The label of a value of a sliced feature in the Evaluator's report.

  Args:
    feature: a feature of SLICED.
    value: its value in an example (bytes for text).

  Returns:
    Its label in `feature.slice_labels`, or its text.
  """
  if isinstance(value, bytes):
    value = value.decode()
  if feature.slice_labels:
    return feature.slice_labels.get(int(value), str(value))
  return str(value)


def genre_id(name: str) -> int:
  """TFDS' id of a genre.

  Args:
    name: the genre as any MovieLens file spells it ("Children's", 'Children').

  Returns:
    Its index in GENRES; KeyError for a genre that is not one.
  """
  return GENRE_IDS[GENRE_ALIASES.get(name, name)]


def bucketize_age(age: float) -> float:
  """The MovieLens 1M age group of an age, as TFDS' bucketized_user_age.

  Args:
    age: an age in years.

  Returns:
    The lower bound of its group in AGE_GROUPS (1 for an age below 18).
  """
  return float(max(bound for bound in AGE_BUCKETS if bound <= max(age, 1)))
