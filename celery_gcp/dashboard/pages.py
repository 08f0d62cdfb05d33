"""The dashboard's HTML: server-rendered, escaped, readable without JavaScript; a few lines of
inline script refresh the page's main part every two seconds. Nothing is fetched from
anywhere else."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from ..cron_syntax import zone
from ..exceptions import InvalidSchedule
from .data import JobView, QueueView, Snapshot, TaskView

__all__ = ["main_part", "page", "queue_page", "task_page"]

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1d3557;color:#fff;padding:.6rem 1rem}header h1{font-size:1.1rem;margin:0}
main{padding:.5rem 1rem}section{background:#fff;border:1px solid #dde1e6;border-radius:6px;
margin:.8rem 0;padding:.5rem .8rem}h2{font-size:1rem;margin:.3rem 0 .6rem}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eef0f2;vertical-align:top}
th{color:#555;font-weight:600;white-space:nowrap}code{font-size:12px;word-break:break-all}
.state{font-weight:600}.PAUSED,.FAILURE,.REVOKED{color:#b00020}.RUNNING,.ENABLED,.SUCCESS{color:#0a7d32}
.RETRY,.STARTED{color:#a15c00}form{display:inline}button{font-size:12px;margin:0 .15rem}
.error{color:#b00020}details summary{cursor:pointer}pre{white-space:pre-wrap;font-size:12px}
.muted{color:#777}
@media (max-width:640px){main{padding:.3rem}
table,tbody,tr,td{display:block}tr.head{display:none}
tr{border-bottom:1px solid #dde1e6;padding:.3rem 0}td{border:0;padding:.1rem .3rem}
td:empty{display:none}td[data-label]::before{content:attr(data-label) ": ";color:#555;
font-weight:600}}
"""

_LIVE = """<script>
(function(){
  var busy=false;
  setInterval(function(){
    if(busy||document.hidden)return; busy=true;
    fetch('?part=main',{cache:'no-store'}).then(function(r){return r.ok?r.text():null})
      .then(function(html){if(html!==null){document.querySelector('main').innerHTML=html;}})
      .catch(function(){}).finally(function(){busy=false;});
  },2000);
})();
</script>"""


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _when_in(value: datetime | None, time_zone: str) -> str:
    """A job's fire time on its own clock (what its cron fields mean), then in UTC."""
    try:
        local = zone(time_zone)
    except InvalidSchedule:  # shown as Cloud Scheduler stored it, in UTC
        return _when(value)
    if value is None or local is UTC:
        return _when(value)
    return f"{value.astimezone(local):%Y-%m-%d %H:%M:%S} {time_zone} ({value:%H:%M} UTC)"


def _button(action: str, label: str, token: str | None) -> str:
    if token is None:
        return ""
    return (f'<form method="post" action="{escape(action)}">'
            f'<input type="hidden" name="token" value="{escape(token)}">'
            f'<button type="submit">{escape(label)}</button></form>')


def _rows(head: list[str], rows: Iterable[list[str]]) -> str:
    # Each cell names its column: on a phone the rows are shown as cards, header-less.
    labels = [f' data-label="{escape(h)}"' if h else "" for h in head]
    return "".join("<tr>" + "".join(f"<td{label}>{cell}</td>"
                                    for label, cell in zip(labels, row, strict=True)) + "</tr>"
                   for row in rows)


def _table(head: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p>{escape(empty)}</p>"
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (f'<div class="scroll"><table><tr class="head">{header}</tr>{_rows(head, rows)}'
            "</table></div>")


def _queues(queues: list[QueueView], token: str | None, base: str = "") -> str:
    rows = []
    for q in queues:
        qid = escape(q.queue_id)
        act = f"{base}actions/queues/{q.queue_id}"
        actions = (_button(f"{act}/resume", "resume", token) if q.state == "PAUSED" else
                   _button(f"{act}/pause", "pause", token))
        actions += _button(f"{act}/purge", "purge", token)
        rows.append([f'<a href="{escape(base)}queues/{qid}"><code>{qid}</code></a>',
                     f'<span class="state {escape(q.state)}">{escape(q.state)}</span>',
                     f"{q.rate:g}/s (burst {q.burst})",
                     str(q.concurrency), str(q.max_attempts),
                     # Cloud Tasks gives no count: past the first page, "more than".
                     f"{q.waiting}+" if q.more else str(q.waiting),
                     str(q.in_flight), actions])
    return _table(["queue", "state", "rate", "concurrency", "max attempts", "waiting",
                   "in flight", ""], rows, "No queue in this location.")


def _tasks(queues: list[QueueView], token: str | None, base: str = "") -> str:
    """The tasks of ``queues``; links are relative to the dashboard's root through ``base``."""
    rows = []
    for q in queues:
        for t in q.tasks:
            detail = f"{base}tasks/{t.queue_id}/{t.task_id}"
            act = f"{base}actions/tasks/{t.queue_id}/{t.task_id}"
            actions = _button(f"{act}/run", "run now", token) + _button(f"{act}/delete",
                                                                          "delete", token)
            rows.append([escape(t.queue_id), f'<a href="{escape(detail)}">{escape(t.name)}</a>',
                         f"<code>{escape(t.celery_id or t.task_id)}</code>",
                         f"<code>{escape(t.arguments)}</code>", escape(_when(t.eta)),
                         str(t.attempts) + (" (in flight)" if t.in_flight else ""),
                         escape(t.last_response), escape(t.retry_reason), actions])
        if q.more:
            more = f"{base}queues/{q.queue_id}?{urlencode({'page': q.more})}"
            rows.append([escape(q.queue_id), f'<a href="{escape(more)}">more tasks of '
                         f"{escape(q.queue_id)} →</a>", "", "", "", "", "", "", ""])
    return _table(["queue", "task", "id", "arguments", "ETA", "attempts", "last response",
                   "retry reason", ""], rows, "No task waiting.")


def _jobs(jobs: list[JobView], token: str | None) -> str:
    rows = [[f"<code>{escape(j.job_id)}</code>", f"<code>{escape(j.schedule)}</code> "
             f"({escape(j.time_zone)})", f'<span class="state {escape(j.state)}">'
             f"{escape(j.state)}</span>", escape(_when_in(j.next_fire, j.time_zone)),
             escape(_when_in(j.last_attempt, j.time_zone)), escape(j.last_status),
             _button(f"actions/jobs/{j.job_id}/run", "fire now", token)] for j in jobs]
    return _table(["job", "schedule", "state", "next fire", "last fire", "last status", ""],
                  rows, "No periodic job.")


def _value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return escape(text[:300] + ("…" if len(text) > 300 else ""))


def _runtime(seconds: Any) -> str:
    return f"{seconds:.3f} s" if isinstance(seconds, int | float) else ""


def _finished(metas: list[dict[str, Any]] | None) -> str:
    if metas is None:
        return "<p>No result store (set <code>result_backend</code> to see finished tasks).</p>"
    rows = []
    for m in metas:
        state = str(m.get("status", ""))
        trace = m.get("traceback")
        rows.append([f"<code>{escape(str(m.get('task_id', '')))}</code>",
                     escape(str(m.get("name") or "")),
                     f'<span class="state {escape(state)}">{escape(state)}</span>',
                     f"<code>{_value(m.get('result'))}</code>",
                     (f"<details><summary>traceback</summary><pre>{escape(str(trace))}</pre>"
                      "</details>") if trace else "",
                     escape(str(m.get("date_done") or "")), _runtime(m.get("runtime"))])
    table = _table(["id", "task", "state", "result", "", "finished", "runtime"], rows,
                   "No finished task recorded yet.")
    if any(not m.get("name") for m in metas):
        # As in Celery, a result names its task only with result_extended: say so, rather
        # than leave a column blank with no reason.
        table += ('<p class="muted">Set <code>result_extended = True</code> to store (and see '
                  "here) the task name of each result.</p>")
    return table


def main_part(snapshot: Snapshot, token: str | None) -> str:
    """The page's live part (what the script refreshes)."""
    errors = "".join(f'<p class="error">{escape(e)}</p>' for e in snapshot.errors)
    return (f"{errors}<section><h2>Queues</h2>{_queues(snapshot.queues, token)}</section>"
            f"<section><h2>Tasks</h2>{_tasks(snapshot.queues, token)}</section>"
            f"<section><h2>Periodic jobs</h2>{_jobs(snapshot.jobs, token)}</section>"
            f"<section><h2>Finished</h2>{_finished(snapshot.finished)}</section>")


def _frame(title: str, location: str, body: str, live: bool, read_only: bool) -> str:
    mode = " · read-only" if read_only else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
            f'<header><h1>{escape(title)}</h1><small>{escape(location)}{mode}</small></header>'
            f"<main>{body}</main>"
            + ('<noscript><p style="padding:0 1rem">Reload the page to see changes.</p>'
               f"</noscript>{_LIVE}" if live else "") + "</body></html>")


def page(app_name: str, snapshot: Snapshot, token: str | None) -> str:
    """The whole dashboard page."""
    return _frame(f"celery-gcp · {app_name}", snapshot.location, main_part(snapshot, token),
                  live=True, read_only=token is None)


def queue_page(app_name: str, location: str, queue: QueueView, token: str | None) -> str:
    """One queue and a page of its tasks, linking to the next page."""
    body = (f"<section><h2>Queue</h2>{_queues([queue], token, base='../')}</section>"
            f"<section><h2>Tasks</h2>{_tasks([queue], token, base='../')}</section>"
            '<p><a href="../">back</a></p>')
    return _frame(f"celery-gcp · {app_name} · {queue.queue_id}", location, body, live=False,
                  read_only=token is None)


def task_page(app_name: str, location: str, task: TaskView, meta: dict[str, Any] | None,
              token: str | None) -> str:
    """One task in detail, with its stored result."""
    raw = task.raw
    fields = [("queue", task.queue_id), ("Cloud Tasks task", task.task_id),
              ("Celery id", task.celery_id or ""), ("task", task.name), ("URL", task.url),
              ("ETA", _when(task.eta)), ("attempts", str(task.attempts)),
              ("responses", str(raw.response_count if raw is not None else "")),
              ("last response", task.last_response), ("retry reason", task.retry_reason),
              ("arguments", task.arguments)]
    headers = dict(raw.http_request.headers) if raw is not None else {}
    rows = [[escape(k), f"<code>{escape(v)}</code>"] for k, v in fields]
    rows += [[escape(f"header {k}"), f"<code>{escape(v)}</code>"]
             for k, v in sorted(headers.items())]
    body = f"<section><h2>Task</h2>{_table(['field', 'value'], rows, '')}"
    body += (_button(f"../../actions/tasks/{task.queue_id}/{task.task_id}/run", "run now", token)
             + _button(f"../../actions/tasks/{task.queue_id}/{task.task_id}/delete", "delete",
                       token) + "</section>")
    body += f"<section><h2>Result</h2>{_finished([meta] if meta else [])}</section>"
    body += '<p><a href="../../">back</a></p>'
    return _frame(f"celery-gcp · {app_name} · {task.name}", location, body, live=False,
                  read_only=token is None)
