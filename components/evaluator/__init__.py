"""RetrievalEvaluator: evaluates the exported model over the whole catalog and blesses it."""
from components.evaluator.component import RetrievalEvaluator  # noqa: F401
