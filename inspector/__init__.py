"""The inspector: what every run produced, from ML Metadata (read by pipeline/metadata.py)
and the artifacts it names.

    queries.py    the questions (runs, artifacts, metrics, compare, lineage) as dicts
    tables.py     their answers as text tables
    lists.py      a few eval users' lists: the model's and the most-popular top 10
    report.py     a run as one self-contained HTML page (templates/report.html)
    __main__.py   the command line: `python -m inspector runs|artifacts|metrics|...`
"""
