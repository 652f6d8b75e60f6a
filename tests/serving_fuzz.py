"""Bad requests to every signature of a pushed model, loaded with plain TensorFlow.

    python tests/serving_fuzz.py SERVING_VERSION_DIR MAX_K

Run in its own process (tests/test_pushed_model.py) so that a request that crashed the
process (a kernel's CHECK failure aborts, it does not raise) shows as a dead process rather
than taking the test run down. MAX_K is the model's maximum k (--serving-k at export), which
the retrieve signatures are asked for. Prints one JSON object: for each case, either the
shapes of what came back or the error's type and message.
"""
import functools
import json
import sys

import numpy as np
import tensorflow as tf

NOW = 890_000_000


def cases(model, max_k: int):
  """name -> a call of a signature with a bad or extreme request."""
  int64, string = tf.int64, tf.string
  k = tf.constant(max_k, tf.int32)
  # The retrieve signatures asked for the maximum k unless a case says otherwise.
  s = {name: (functools.partial(signature, k=k) if name.startswith('retrieve') else signature)
       for name, signature in model.signatures.items()}

  def users(n, value='1'):
    return tf.constant([value] * n)

  def times(n, value=NOW):
    return tf.constant([value] * n, int64)

  return {
      'embed: empty batch': lambda: s['embed'](user_id=tf.constant([], string),
                                               timestamp=tf.constant([], int64)),
      'retrieve: empty batch': lambda: s['retrieve'](user_id=tf.constant([], string),
                                                     timestamp=tf.constant([], int64)),
      'retrieve: lengths differ': lambda: s['retrieve'](user_id=users(3), timestamp=times(2)),
      'retrieve: 100,000 queries': lambda: s['retrieve'](user_id=tf.constant(
          [str(i % 500) for i in range(100_000)]), timestamp=times(100_000)),
      'embed: user ids not UTF-8': lambda: s['embed'](
          user_id=tf.constant([b'\xff\xfe', b'\xc3(', b'1']), timestamp=times(3)),
      'embed: a 1 MB user id': lambda: s['embed'](user_id=tf.constant(['x' * 2**20]),
                                                  timestamp=times(1)),
      'retrieve: negative timestamps': lambda: s['retrieve'](
          user_id=users(3), timestamp=tf.constant([-1, -NOW, -2**62], int64)),
      'retrieve: far-future timestamps': lambda: s['retrieve'](
          user_id=users(2), timestamp=tf.constant([2**62, 2**63 - 1], int64)),
      'retrieve_excluding: unknown titles only': lambda: s['retrieve_excluding'](
          user_id=users(2), timestamp=times(2),
          exclude=tf.constant([['Not A Movie (1900)', 'x'], ['y', 'z']])),
      'retrieve_excluding: padding only': lambda: s['retrieve_excluding'](
          user_id=users(2), timestamp=times(2), exclude=tf.constant([[''] * 3] * 2)),
      'retrieve_excluding: no columns': lambda: s['retrieve_excluding'](
          user_id=users(2), timestamp=times(2), exclude=tf.zeros([2, 0], string)),
      'retrieve_excluding: 5,000 columns': lambda: s['retrieve_excluding'](
          user_id=users(2), timestamp=times(2), exclude=tf.constant([['?'] * 5000] * 2)),
      'retrieve_excluding: rows differ': lambda: s['retrieve_excluding'](
          user_id=users(1), timestamp=times(1), exclude=tf.constant([['a'], ['b']])),
      'retrieve_excluding: a vector, one title per query': lambda: s['retrieve_excluding'](
          user_id=users(2), timestamp=times(2), exclude=tf.constant(['a', 'b'])),
      'embed: timestamps as floats': lambda: s['embed'](
          user_id=users(1), timestamp=tf.constant([1.5], tf.float32)),
      'embed: user ids as numbers': lambda: s['embed'](user_id=tf.constant([1], int64),
                                                       timestamp=times(1)),
      'retrieve: user ids as a matrix': lambda: s['retrieve'](
          user_id=tf.constant([['1', '2'], ['3', '4']]), timestamp=times(2)),
      'retrieve: a missing input': lambda: s['retrieve'](user_id=users(1)),
      'retrieve: no k': lambda: model.signatures['retrieve'](user_id=users(1),
                                                             timestamp=times(1)),
      'retrieve: k 0': lambda: s['retrieve'](user_id=users(1), timestamp=times(1),
                                             k=tf.constant(0)),
      'retrieve_excluding: k above the maximum': lambda: s['retrieve_excluding'](
          user_id=users(1), timestamp=times(1), exclude=tf.constant([['a']]),
          k=tf.constant(max_k + 1)),
      'retrieve: k one per query': lambda: s['retrieve'](
          user_id=users(2), timestamp=times(2), k=tf.constant([max_k] * 2)),
      'retrieve: k differing between queries': lambda: s['retrieve'](
          user_id=users(2), timestamp=times(2), k=tf.constant([1, 2])),
      'serving_default: not an Example': lambda: s['serving_default'](
          examples=tf.constant(['not an example'])),
      'serving_default: an Example without user_id': lambda: s['serving_default'](
          examples=tf.constant([tf.train.Example(features=tf.train.Features(feature={
              'timestamp': tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}))
              .SerializeToString()])),
      'serving_default: empty batch': lambda: s['serving_default'](
          examples=tf.constant([], string)),
  }


def outcome(call):
  try:
    answer = call()
  except Exception as error:  # pylint: disable=broad-except  (what a server returns)
    # A graph's error message carries the failing op's trace around the message itself.
    return {'error': type(error).__name__, 'message': getattr(error, 'message', str(error))}
  result = {}
  for name, value in answer.items():
    value = value.numpy()
    result[name] = {'shape': list(value.shape),
                    'finite': bool(np.isfinite(value).all()) if value.dtype.kind == 'f'
                    else None}
  return {'answer': result}


def main(directory: str, max_k: int) -> None:
  model = tf.saved_model.load(directory)
  print(json.dumps({name: outcome(call) for name, call in cases(model, max_k).items()}))


if __name__ == '__main__':
  main(sys.argv[1], int(sys.argv[2]))
