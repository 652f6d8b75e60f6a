"""The inspector: what every run produced, from ML Metadata and the artifacts it names.

    metadata.py   reading ML Metadata: runs, executions, artifacts, lineage links
    queries.py    the questions (runs, artifacts, metrics, compare, lineage) as dicts
    tables.py     their answers as text tables
    report.py     a run as one self-contained HTML page (templates/report.html)
    __main__.py   the command line: `python -m inspector runs|artifacts|metrics|...`
"""
