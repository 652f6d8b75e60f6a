"""Names shared by preprocessing_fn and the model, and the one title tokenizer both use."""
import tensorflow as tf

# Raw features (TFDS names, as ExampleGen writes them): declared once, in data/features.py.
from data.features import (BUCKETIZED_USER_AGE, MOVIE_GENRES, MOVIE_TITLE,  # noqa: F401
                           TIMESTAMP, USER_GENDER, USER_ID, USER_OCCUPATION_TEXT,
                           USER_ZIP_CODE)

# Transformed features.
USER_INDEX = 'user_index'  # index into the user-id vocabulary; the last index is "unknown"
TIMESTAMP_BUCKET = 'timestamp_bucket'  # equal-width bucket between the data's min and max
TIMESTAMP_Z = 'timestamp_z'  # z-score
# User features, each an index into a vocabulary of its training values whose last index is
# "unknown" (a release without them, a request without them, a value training never saw).
USER_AGE_INDEX = 'user_age_index'
USER_GENDER_INDEX = 'user_gender_index'
USER_OCCUPATION_INDEX = 'user_occupation_index'
USER_ZIP_INDEX = 'user_zip_index'  # the first ZIP_PREFIX characters of the zip code
ZIP_PREFIX = 2
# Raw user feature -> its transformed index (also the name of its vocabulary).
USER_FEATURES = {BUCKETIZED_USER_AGE: USER_AGE_INDEX, USER_GENDER: USER_GENDER_INDEX,
                 USER_OCCUPATION_TEXT: USER_OCCUPATION_INDEX, USER_ZIP_CODE: USER_ZIP_INDEX}
# MOVIE_TITLE passes through untouched: the candidate tower reads titles.
TITLE_INDEX = 'title_index'  # made by the Trainer: the title's position in the catalog lookup

# Vocabularies Transform writes (tft.TFTransformOutput.vocabulary_file_by_name).
USER_VOCABULARY = 'user_id'
TITLE_VOCABULARY = 'movie_title'  # with each title's number of training ratings
TITLE_TOKEN_VOCABULARY = 'movie_title_tokens'

# What Keras' TextVectorization strips by default (the tutorial's title tokenizer).
_PUNCTUATION = r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~\']'


def title_tokens(titles: tf.Tensor) -> tf.RaggedTensor:
  """Lower-cased, punctuation-free words of each title, as TextVectorization splits them."""
  return tf.strings.split(tf.strings.regex_replace(tf.strings.lower(titles), _PUNCTUATION, ''))
