"""The inspector's answers as text tables (`python -m inspector COMMAND` without --json)."""
from typing import Dict, List

from tabulate import tabulate

from components.evaluator.tables import per_user_tables, slice_tables, top_k_tables
from shared import names


def _table(rows: List[List[object]], header: List[str]) -> str:
  # Floats formatted here too: tabulate leaves a column that mixes types as it is given.
  return tabulate([[_cell(c) if isinstance(c, float) else c for c in row] for row in rows],
                  headers=header, floatfmt='.4f', missingval='')


def _cell(value) -> str:
  if isinstance(value, float):
    return f'{value:.4f}'
  return '' if value is None else str(value)


def format_runs(runs: List[Dict]) -> str:
  rows = []
  for r in runs:
    by_state: Dict[str, List[str]] = {}
    for c in r['components']:
      by_state.setdefault(c['state'], []).append(c['component'])
    state = f'{r["state"]} (partial)' if r['partial'] else r['state']
    rows.append([r['run'], r['run_id'], r['started'], f'{r["seconds"]:.0f} s', state,
                 f'{r["components_done"]}/{len(r["components"])}',
                 len(by_state.get('ran', [])), len(by_state.get('cached', [])),
                 '; '.join(f'{state}: {", ".join(names)}' for state, names in by_state.items()
                           if state not in ('ran', 'cached'))])
  return _table(rows, ['run', 'run id', 'started', 'took', 'state', 'done', 'ran', 'cached',
                       'failed or not run'])


def format_artifacts(result: Dict) -> str:
  rows = [[a['component'], a['key'], a['type'], a['id'], a['produced'], a['uri'],
           ', '.join(f'{k}={_cell(v)}' for k, v in a['properties'].items())]
          for a in result['artifacts']]
  return (f'Run {result["run"]} ({result["run_id"]}):\n'
          + _table(rows, ['component', 'output', 'type', 'id', 'produced', 'uri',
                          'properties']))


def format_metrics(result: Dict) -> str:
  parts = [f'Run {result["run"]} ({result["run_id"]}): {result["num_eval_ratings"]:,} held-out '
           f'ratings, {result["num_candidates"]:,} candidates; {result["evaluation_uri"]}']
  for title, header, rows in (top_k_tables(result) + per_user_tables(result)
                              + slice_tables(result)):
    parts.append(f'\n{title}:\n' + _table(rows, header))
  gate = result['gate']
  parts.append('\ngate: ' + ('BLESSED' if gate['blessed'] else 'NOT BLESSED'))
  parts.extend(f'  {"PASS" if c["passed"] else "FAIL"}  {c["explanation"]}'
               for c in gate['checks'])
  pushed = result['pushed']
  parts.append(f'pushed: version {pushed["version"]} at {pushed["destination"]}' if pushed
               else 'pushed: nothing')
  return '\n'.join(parts)


def format_tuning(result: Dict) -> str:
  names = sorted({name for trial in result['trials'] for name in trial['hyperparameters']})
  rows = [[t['trial_id'], t['status'], t['score'],
           None if t['best_epoch'] is None else int(t['best_epoch']),
           None if t['seconds'] is None else f"{t['seconds']:.0f}"]
          + [t['hyperparameters'].get(name) for name in names] for t in result['trials']]
  best = ', '.join(f'{k}={_cell(v)}' for k, v in sorted(result['best_hyperparameters'].items()))
  return (f'Run {result["run"]} ({result["run_id"]}): {len(rows)} trials ('
          f'{result["produced"]}); {result["tuner_results_uri"]}\n'
          + _table(rows, ['trial', 'status', 'val top-100', 'best epoch', 'seconds', *names])
          + f'\nthe Trainer took: {best}')


def format_compare(result: Dict) -> str:
  first, second = result['runs']
  header = ['', f'run {first["run"]}', f'run {second["run"]}']
  parts = [f'Run {first["run"]} ({first["run_id"]}) against run {second["run"]} '
           f'({second["run_id"]})']
  rows = [[key, _cell(a), _cell(b)] for key, (a, b) in result['settings_that_differ'].items()]
  parts.append('\nsettings that differ:\n' + (_table(rows, header) if rows else '  none'))
  a, b = result['metrics']
  if 'missing' in a or 'missing' in b:
    parts.append('\n' + '\n'.join(m['missing'] for m in (a, b) if 'missing' in m))
  else:
    rows = [[f'{title} top-{k}', a[section]['model'][k], b[section]['model'][k]]
            for section, title in (('top_k', 'model'), ('top_k_unseen', 'model, seen removed'))
            for k in a[section]['model']]
    # Blank for a run whose evaluation.json predates the per-user figures.
    per_user = [m['per_user_unseen'] for m in (a, b)]
    k = next((figures['k'] for figures in per_user if figures), None)
    if k is not None:
      rows.extend([f'model {label}@{k} per user, seen removed', *(
          figures['rankings']['model'][key] if figures else None for figures in per_user)]
          for key, label in (('recall', 'Recall'), ('ndcg', 'NDCG')))
    rows.append([f'most popular top-{names.GATE_K}', a['top_k']['popularity'][names.GATE_KEY],
                 b['top_k']['popularity'][names.GATE_KEY]])
    rows.append(['blessed', a['blessed'], b['blessed']])
    rows.append(['failed checks', ', '.join(a['failed_checks']) or '-',
                 ', '.join(b['failed_checks']) or '-'])
    rows.append(['pushed version', (a['pushed'] or {}).get('version', '-'),
                 (b['pushed'] or {}).get('version', '-')])
    parts.append('\nmetrics:\n' + _table(rows, header))
  return '\n'.join(parts)


def format_lineage(result: Dict) -> str:
  lines = [f'Lineage of artifact {result["artifact"]}, newest step first:']
  for step in result['steps']:
    where = f' (run {step["run"]})' if step['run'] else ''
    lines.append(f'  {step["component"]}{where}, execution {step["execution"]}')
    for link in step['inputs']:
      lines.append(f'    <- {link["key"]}: {link["type"]} {link["artifact"]} from '
                   f'{link["from"]}  {link["uri"]}')
    if 'data' in step:
      data = step['data']
      lines.append(f'    <- data: {data["directory"]} ({data.get("data_layout")}; '
                   f'{data.get("data_source")})')
  return '\n'.join(lines)


def format_lists(result: Dict) -> str:
  parts = [f'Run {result["run"]} ({result["run_id"]}): {len(result["users"])} users of the eval '
           f'split (seed {result["seed"]}), top {result["k"]} with the titles each rated in '
           f'training removed; * marks a held-out title. Model: {result["model_uri"]}']
  for user in result['users']:
    held_out = set(user['held_out'])

    def marked(titles):
      return [('* ' if title in held_out else '  ') + title for title in titles]

    parts.append(f'\nuser {user["user_id"]}: {user["num_train_ratings"]} training ratings, '
                 f'{len(held_out)} held out; rated last: ' + '; '.join(user['latest_rated']))
    parts.append(_table([[rank, model, popular] for rank, (model, popular) in enumerate(
        zip(marked(user['model']), marked(user['popularity'])), start=1)],
        ['', 'this model', 'most popular']))
    parts.append(f'held-out titles hit: this model {len(user["model_hits"])}, most popular '
                 f'{len(user["popularity_hits"])}')
  return '\n'.join(parts)
