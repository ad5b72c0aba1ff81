"""待审核 on the desk: the replies (returns, extension requests) the review sent back, for the
hotline staff, and their decision on each.

GET /reviews (JSON twin /reviews.json): every review that found something and that no one has
decided yet, newest first; each with the text and its findings highlighted. POST
/reviews/decide: `of` (the reviewed event's id), `decision` (pass, return, accept) and `note`
(editable; required to accept a flagged reply: why it is acceptable). The decision is a
`review_decided` event through the normal ingest (so `return` texts the unit's liaison with the
note, and `pass`/`accept` count the reply as passed), and a desk_audit row. Integrators post the
same event to /api/v1/events. Supervisors decide; the leader may look.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from supervisor.core.events import Event
from supervisor.core.review import Finding, highlight, reply_text
from supervisor.desk.app import DESK, Viewer, add_page, audit, render, signed_in
from supervisor.desk.format import bj_iso
from supervisor.vocabulary import REVIEW_DECISIONS

PATH = "/reviews"
ROLES = frozenset({"supervisor", "leader"})
DECIDERS = frozenset({"supervisor"})
KIND_ZH = {"replied": "答复", "returned": "退单申请", "extension_requested": "延期申请"}
DECISION_ZH = {"pass": "通过", "return": "退回", "accept": "认可（附理由）"}
LIMIT = 200

# The returned reviews without a later decision in one hash anti join over all of them (the
# partial index events_review_queue, migration 023), then the newest: asked for the newest first,
# the planner walked every review back in time probing each for a decision (250 ms at 1,000,000
# tickets, where the queue is short and the decided reviews many).
QUEUE = """
WITH pending AS MATERIALIZED (
    SELECT v.id, v.ticket, v.at, v.data FROM events v
    WHERE v.type = 'reviewed' AND v.data->>'outcome' = 'returned'
      AND NOT EXISTS (SELECT 1 FROM events d WHERE d.type = 'review_decided'
                      AND d.data->>'of' = v.data->>'of' AND d.at >= v.at)
), newest AS (
    SELECT * FROM pending ORDER BY at DESC, id LIMIT $1
)
SELECT v.id, v.ticket, v.at, v.data AS review, e.type AS kind, e.data AS original, t.unit
FROM newest v
JOIN events e ON e.id = v.data->>'of'
LEFT JOIN tickets t ON t.ticket = v.ticket
ORDER BY v.at DESC, v.id
"""


def _json(value: Any) -> dict[str, Any]:
    import json

    return json.loads(value) if isinstance(value, str) else dict(value)


def _marks(text: str, review: dict[str, Any], policy: Any) -> list[tuple[str, bool]]:
    """The text in pieces, flagged where a failed check's words or patterns are: what the unit
    wrote that the review objects to (a missing element has nothing to mark)."""
    failed = set(review.get("checks", ()))
    findings = []
    for check in policy.review.checks:
        if check.id not in failed or check.kind not in ("forbid", "resolved_claim"):
            continue
        pat = check.compiled()
        if pat is not None:
            spans = tuple(m.span() for m in pat.finditer(text))
            findings.append(Finding(check.id, check.name, check.message, spans))
    return highlight(text, findings)


async def queue_data(request: web.Request, v: Viewer) -> dict[str, Any]:
    desk = request.app[DESK]
    policy = desk.runtime.policy
    scope = None if v.user.sees_all else v.user.unit
    async with desk.host.pool.acquire() as conn:
        rows = await conn.fetch(QUEUE, LIMIT)
    items = []
    for r in rows:
        if scope is not None and r["unit"] != scope:
            continue
        review, original = _json(r["review"]), _json(r["original"])
        text = reply_text(original) or ""
        items.append({
            "of": review["of"], "ticket": r["ticket"], "at": bj_iso(r["at"]),
            "kind": r["kind"], "kind_label": KIND_ZH.get(r["kind"], r["kind"]),
            "unit": r["unit"] or original.get("unit") or "",
            "unit_name": desk.runtime.directory.unit_name(r["unit"]) if r["unit"] else "",
            "text": text, "findings": list(review.get("findings", ())),
            "checks": list(review.get("checks", ())),
            "pieces": [{"text": t, "flagged": f} for t, f in _marks(text, review, policy)],
        })  # fmt: skip
    return {"reviews": items, "count": len(items), "may_decide": v.user.role in DECIDERS}


async def queue(request: web.Request, v: Viewer) -> web.Response:
    if v.user.role not in ROLES:
        raise web.HTTPForbidden(text="无权查看：待审核仅限热线专员和分管领导")
    data = await queue_data(request, v)
    if request.path.endswith(".json"):
        return web.json_response(data, dumps=_dumps)
    return render(request, "reviews.html", data, v)


def _dumps(o: Any) -> str:
    import json

    return json.dumps(o, ensure_ascii=False)


async def decide(request: web.Request, v: Viewer) -> web.StreamResponse:
    desk = request.app[DESK]
    if v.user.role not in DECIDERS:
        raise web.HTTPForbidden(text="无权审核：仅热线专员可以通过或退回答复")
    form = await request.post()
    of = str(form.get("of", "")).strip()
    decision = str(form.get("decision", "")).strip()
    note = str(form.get("note", "")).strip()[:500]
    if decision not in REVIEW_DECISIONS:
        raise web.HTTPBadRequest(text=f"decision: 只能是 {', '.join(REVIEW_DECISIONS)}")
    if decision == "accept" and not note:
        raise web.HTTPBadRequest(text="note: 认可被标记的答复须写明理由")
    if "\x00" in note:
        raise web.HTTPBadRequest(text="note: 含有无效字符")
    async with desk.host.pool.acquire() as conn:
        row = (
            await conn.fetchrow("SELECT ticket, type FROM events WHERE id = $1", of) if of else None
        )
        n = (
            await conn.fetchval(
                "SELECT count(*) FROM events WHERE type = 'review_decided' AND data->>'of' = $1", of
            )
            if row
            else 0
        )
    if row is None or row["type"] not in KIND_ZH:
        raise web.HTTPBadRequest(text="of: 没有这条待审核的答复")
    now: datetime = desk.now()
    data: dict[str, Any] = {"of": of, "decision": decision, "by": v.user.login}
    if note:
        data["note"] = note
    event = Event(f"{of}~decided-{n + 1}", row["ticket"], "review_decided", now, data)
    await desk.host.supervisor.ingest_events([event])
    wake = getattr(desk.host, "wake_scheduler", None)  # the daemon: its steps at 0 go now
    if wake is not None:
        wake.set()
    await audit(
        desk.host.pool, at=now, actor=v.user.login, role=v.user.role, unit=v.user.unit,
        action="review_decided", remote=request.remote or "-",
        detail={"ticket": row["ticket"], "of": of, "decision": decision, "note": note},
    )  # fmt: skip
    if request.headers.get("Accept", "").startswith("application/json"):
        return web.json_response({"ok": True, "event": event.id})
    await desk.sessions.update(v.session, flash=f"已{DECISION_ZH[decision]}：工单{row['ticket']}")
    raise web.HTTPSeeOther(PATH)


def mount_reviews(app: web.Application) -> None:
    app.router.add_get(PATH, signed_in(queue))
    app.router.add_get(PATH + ".json", signed_in(queue))
    app.router.add_post(PATH + "/decide", signed_in(decide))
    add_page(app, "待审核", PATH, roles=ROLES)
