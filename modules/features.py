"""Names shared by preprocessing_fn and the model, and the one title tokenizer both use."""
import tensorflow as tf

# Raw features (TFDS names, as ExampleGen writes them).
USER_ID = 'user_id'
TIMESTAMP = 'timestamp'
MOVIE_TITLE = 'movie_title'
MOVIE_GENRES = 'movie_genres'  # in the catalog: TFDS genre ids

# Transformed features.
USER_INDEX = 'user_index'  # index into the user-id vocabulary; the last index is "unknown"
TIMESTAMP_BUCKET = 'timestamp_bucket'  # equal-width bucket between the data's min and max
TIMESTAMP_Z = 'timestamp_z'  # z-score
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
