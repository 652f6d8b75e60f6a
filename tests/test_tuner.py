"""The Tuner's search space, its validation share and how its choice reaches the settings."""
import numpy as np
import pytest

from modules import hparams, tuner


def test_the_search_space_offers_each_setting_s_choices():
  space = tuner.search_space()
  assert set(space.values) == set(hparams.SEARCH_SPACE)
  for name, choices in hparams.SEARCH_SPACE.items():
    assert space.values[name] == choices[0]  # the first choice is the default


def test_a_tuned_choice_becomes_a_valid_training_configuration():
  config = hparams.with_tuned(hparams.PRESETS['recommended'],
                              {'layer_sizes': '256,128,64', 'user_features': True,
                               'learning_rate': 0.005})
  assert config.layer_sizes == [256, 128, 64] and config.user_features
  assert config.learning_rate == 0.005 and config.optimizer == 'adam'  # the rest kept
  with pytest.raises(ValueError, match='unknown training settings: depth'):
    hparams.with_tuned(config, {'depth': 3})


def test_the_validation_share_is_carved_from_train_seeded_and_disjoint():
  columns = {'movie_title': np.arange(1000).astype(str).astype(object),
             'user_index': np.arange(1000)}
  train, validation = tuner.carve_validation(columns, 10, seed=1)
  assert len(validation['user_index']) == 100 and len(train['user_index']) == 900
  assert not set(train['user_index']) & set(validation['user_index'])
  assert list(validation['movie_title']) == [str(i) for i in validation['user_index']]
  again, _ = tuner.carve_validation(columns, 10, seed=1)
  assert list(again['user_index']) == list(train['user_index'])
