"""RetrievalEvaluator (component.py): evaluates the exported model over the whole catalog and
blesses it; executor.py runs it, gate.py decides, tables.py shows its figures."""
