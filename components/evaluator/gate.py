"""The blessing decision: every check a model must pass before the Pusher may ship it."""
import dataclasses
from typing import List, Optional


@dataclasses.dataclass
class Check:
  name: str
  passed: bool
  value: float  # the model's top-100 accuracy
  threshold: Optional[float]  # what it had to reach; None when there was nothing to compare
  explanation: str

  def line(self) -> str:
    return f'{"PASS" if self.passed else "FAIL"}  {self.explanation}'


def checks(top100: float, popularity_top100: float, min_top100: float, min_lift: float,
           max_regression: float, baseline_top100: Optional[float] = None,
           baseline_id: Optional[int] = None) -> List[Check]:
  """The gate on top-100 accuracy: a lift over the most-popular list on the same split (a
  floor that means the same on every release), an optional absolute floor, and the latest
  blessed model (when there is one) less a tolerance."""
  lift_floor = min_lift * popularity_top100
  lift = top100 / popularity_top100 if popularity_top100 else float('inf')
  result = [
      Check('minimum', top100 >= min_top100, top100, min_top100,
            f'top-100 accuracy {top100:.4f} >= {min_top100:.4f} (absolute minimum, '
            '--min-top100)'),
      Check('beats_popularity', top100 > popularity_top100 and top100 >= lift_floor, top100,
            lift_floor,
            f'top-100 accuracy {top100:.4f} is {lift:.2f}x the {popularity_top100:.4f} of '
            f'recommending the most-rated movies to everyone; at least {min_lift:.2f}x '
            '(--min-lift)'),
  ]
  if baseline_top100 is None:
    result.append(Check('no_regression', True, top100, None,
                        'no blessed model yet to compare with: this one is the first'))
  else:
    floor = baseline_top100 - max_regression
    result.append(Check(
        'no_regression', top100 >= floor, top100, floor,
        f'top-100 accuracy {top100:.4f} >= {floor:.4f}: the latest blessed model '
        f'(artifact {baseline_id}) scores {baseline_top100:.4f} on this eval split, '
        f'less {max_regression:.4f} of tolerance (--max-regression)'))
  return result
