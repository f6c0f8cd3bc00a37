"""The alerts job: every project's light recomputed at `now`, problems opened and closed, escalation queued.

One run, in one transaction (jobs.registry.run_job commits):
1. read the ledger (bot.ledger.scan: projects and milestones in two queries), the open problems and
   which projects have reported, and work out what is wrong now (bot.domain.problems);
2. close the problems that are fixed and tell everyone who was alerted (`resolved:<person>:<id>:0`);
3. note level changes: yellow → red tells everyone already alerted once more (`alert:<person>:<id>:red`)
   and does not delay the escalation; red → yellow is progress, so the escalation clock restarts,
   silently;
4. open the new problems directly at step 1 and queue it (`alert:<person>:<id>:1`): the INSERT … ON
   CONFLICT DO NOTHING on the open-problem index is the claim, so two overlapping runs open and
   announce a problem once;
5. take each later step that is due with a conditional UPDATE on problems.step (two runs cannot both
   take it) and queue the step's messages in the same transaction (`alert:<person>:<id>:<step>`).

Decisions where the issue is silent:
- a step with nobody to tell (no bound, reachable county leader, say) is still taken, so the problem
  goes on to the next step rather than waiting for someone to be invited;
- people who blocked the bot (reachable False) are skipped; the digest lists them for the admins;
- a problem's `step_at` is when its latest step is delivered (after quiet hours), and the next step
  counts working days from then, at the same time of day.

Near 400 lines on purpose: one job's one transaction, its steps 1–5 read top to bottom; the rules it
applies are apart already (bot.domain.problems, bot.ledger.scan).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.store import channels_for
from bot.domain.cycle import cycle_for
from bot.domain.lights import Assessment, LightRules
from bot.domain.periods import period_of, previous_period
from bot.domain.problems import (
    STEP_ROLES,
    EscalationRules,
    Finding,
    OpenProblem,
    light_findings,
    missed_update_finding,
    reason_dict,
    reconcile,
    step_due,
    update_missing,
    with_notified,
)
from bot.domain.states import Light, ProblemStep, Role
from bot.domain.workdays import is_workday
from bot.ledger.scan import ProjectFacts, assess_all, county_names, load_project_facts
from bot.services.reports import reported_project_ids
from bot.store.models import Channel, Person, Problem
from bot.store.outbox import enqueue_many, outbox_key, row
from bot.telegram.callbacks import ProjectAction
from jobs.base import JobContext, JobResult
from jobs.channel_routing import alert_audience, alert_rows

INSERT_CHUNK = 500  # rows per multi-row INSERT (SQLite caps bound parameters)


@dataclass(frozen=True)
class Audience:
    """Everyone bound to Telegram, by id, and who hears each step for a county."""

    people: Mapping[int, Person]

    @classmethod
    async def load(cls, session: AsyncSession) -> Audience:
        rows = await session.scalars(select(Person).where(Person.telegram_id.is_not(None)).order_by(Person.id))
        return cls({p.id: p for p in rows})

    def for_step(self, step: ProblemStep, county_id: int) -> list[Person]:
        role = STEP_ROLES[step]
        return [
            p for p in self.people.values()
            if p.role == role and p.reachable and (role == Role.LEADER or p.county_id == county_id)
        ]

    def reachable(self, person_ids: Iterable[int]) -> list[Person]:
        found = (self.people.get(pid) for pid in person_ids)
        return [p for p in found if p is not None and p.reachable]


_OPEN_COLUMNS = (Problem.id, Problem.project_id, Problem.kind, Problem.ref, Problem.level, Problem.step,
                 Problem.step_at, Problem.opened_at)


def _open_problem(row: Any, detail: Mapping[str, Any] | None = None) -> OpenProblem:
    pid, project_id, kind, ref, level, step, step_at, opened_at = row
    return OpenProblem(id=pid, project_id=project_id, kind=kind, ref=ref, level=level, step=step, step_at=step_at,
                       opened_at=opened_at, detail=dict(detail or {}))


async def load_open_problems(session: AsyncSession) -> list[OpenProblem]:
    """Every open problem, without its detail (JSON): a run reads that only for the few it acts on."""
    rows = await session.execute(select(*_OPEN_COLUMNS).where(Problem.closed_at.is_(None)).order_by(Problem.id))
    return [_open_problem(row) for row in rows]


async def with_details(session: AsyncSession, problems: list[OpenProblem]) -> list[OpenProblem]:
    """The problems with their detail read from the database."""
    details: dict[int, Mapping[str, Any]] = {}
    ids = [p.id for p in problems]
    for start in range(0, len(ids), INSERT_CHUNK):
        query = select(Problem.id, Problem.detail).where(Problem.id.in_(ids[start:start + INSERT_CHUNK]))
        details.update({pid: detail for pid, detail in await session.execute(query)})
    return [replace(p, detail=dict(details.get(p.id) or {})) for p in problems]


async def _reported_periods(
    session: AsyncSession, period: str, open_missed: Iterable[OpenProblem]
) -> dict[int, set[str]]:
    """Per project, the months (this one, and back to the oldest open missed update) it has reported for."""
    reported: dict[int, set[str]] = defaultdict(set)
    for pid in await reported_project_ids(session, period):
        reported[pid].add(period)
    since: dict[int, str] = {p.project_id: p.ref for p in open_missed}
    if since:
        oldest = min(since.values())
        month = previous_period(period)
        while month >= oldest:
            waiting = [pid for pid, ref in since.items() if ref <= month]
            for pid in await reported_project_ids(session, month, waiting):
                reported[pid].add(month)
            month = previous_period(month)
    return reported


async def current_findings(
    session: AsyncSession,
    facts: list[ProjectFacts],
    assessments: Mapping[int, Assessment],
    open_problems: list[OpenProblem],
    *,
    now: dt.datetime,
    ctx: JobContext,
) -> list[Finding]:
    """Everything wrong with the ledger at `now`."""
    today = ctx.local(now).date()
    period = period_of(now, ctx.tz)
    deadlines: dict[str, dt.date] = {}

    def deadline_of(month: str) -> dt.date:
        if month not in deadlines:
            deadlines[month] = cycle_for(month, ctx.settings).deadline
        return deadlines[month]

    deadline = deadline_of(period)
    open_missed = {p.project_id: p for p in open_problems if p.kind == "missed_update"}
    reported = await _reported_periods(session, period, open_missed.values())
    findings: list[Finding] = []
    for fact in facts:
        assessment = assessments[fact.id]
        if assessment.reasons:  # green projects (most of them) have nothing to find
            ids = dict(zip((ms.name for ms in fact.state.milestones), fact.milestone_ids, strict=True))
            findings += light_findings(
                fact.id, assessment, progress=fact.state.progress, status=fact.status, milestone_ids=ids
            )
        opened = open_missed.get(fact.id)
        missing = update_missing(
            status=fact.status, today=today, period=period, deadline=deadline,
            reported_periods=reported.get(fact.id, ()), open_since=opened.ref if opened else None,
        )
        if missing is not None:
            findings.append(missed_update_finding(fact.id, missing, deadline_of(missing)))
    return findings


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


class _Writer:
    """Renders and queues the messages of one run."""

    def __init__(
        self,
        session: AsyncSession,
        ctx: JobContext,
        now: dt.datetime,
        facts: Mapping[int, ProjectFacts],
        assessments: Mapping[int, Assessment],
        counties: Mapping[int, str],
        audience: Audience,
        channels: list[Channel] | None = None,
    ) -> None:
        self.session, self.ctx, self.now = session, ctx, now
        self.channels = channels or []  # group robots and mailboxes that get alerts (README "Channels")
        self.today = ctx.local(now).date()
        self.send_at = ctx.send_after(now)
        self.facts, self.assessments, self.counties, self.audience = facts, assessments, counties, audience
        self.rows: dict[str, dict[str, Any]] = {}  # by outbox key, queued together by flush()
        self.labels: dict[tuple[str, str], str] = {}

    def view(self, problem: OpenProblem, role: str, step: int) -> dict[str, Any]:
        """Everything a template needs about one problem, as the ledger stands now."""
        fact = self.facts[problem.project_id]
        assessment = self.assessments[fact.id]
        detail = problem.detail
        view: dict[str, Any] = {
            "kind": problem.kind, "level": problem.level, "role": role, "step": step,
            "code": fact.code, "name": fact.name, "county": self.counties.get(fact.county_id, ""),
            "since": self.ctx.local(problem.opened_at).date(), "closed": self.today,
            "expected": assessment.expected, "progress": fact.state.progress, "status": fact.status,
            "reasons": [reason_dict(r) for r in assessment.reasons if r.code != "milestone_overdue"]
            or list(detail.get("reasons", [])),
        }
        if problem.kind == "milestone":
            due = dt.date.fromisoformat(detail["due"]) if detail.get("due") else None
            view.update(milestone=detail.get("milestone", ""), due=due,
                        days=(self.today - due).days if due else None, since=due or view["since"])
        elif problem.kind == "missed_update":
            deadline = dt.date.fromisoformat(detail["deadline"]) if detail.get("deadline") else None
            view.update(period=detail.get("period", problem.ref), deadline=deadline, since=deadline or view["since"])
        steps = detail.get("steps", {})
        first = steps.get(str(ProblemStep.CONTACT))
        view["first_at"] = self.ctx.local(dt.datetime.fromisoformat(first)).date() if first else view["since"]
        view["earlier"] = [STEP_ROLES[ProblemStep(s)] for s in range(ProblemStep.CONTACT, step)]
        view["wait"] = (EscalationRules.from_settings(self.ctx.settings).wait_after(step - 1)
                        if step > ProblemStep.CONTACT else 0)
        return view

    def _buttons(self, person: Person, project_id: int) -> dict[str, Any]:
        """A contact reports on the project; anyone else opens its card."""
        action = "report" if person.role == Role.CONTACT else "card"
        lang = self.ctx.lang(person)
        if (lang, action) not in self.labels:
            self.labels[(lang, action)] = self.ctx.render(lang, f"alerts.{action}_button")
        button = {"text": self.labels[(lang, action)],
                  "callback_data": ProjectAction(action=action, project_id=project_id).pack()}
        return {"inline_keyboard": [[button]]}

    async def send(
        self, people: Iterable[Person], problem: OpenProblem, *, kind: str, step: int | str, macro: str,
        view_step: int, buttons: bool = True,
    ) -> None:
        code = self.facts[problem.project_id].code
        for person in people:
            assert person.telegram_id is not None
            text = self.ctx.render(self.ctx.lang(person), f"alerts.{macro}",
                                   a=self.view(problem, person.role, view_step))
            markup = self._buttons(person, problem.project_id) if buttons else None
            payload: dict[str, Any] = {"text": text, "reply_markup": markup, "project_codes": [code]}
            key = outbox_key(kind, person.id, str(problem.id), step)
            self.rows[key] = row(key=key, kind=kind, chat_id=person.telegram_id, person_id=person.id,
                                 payload=payload, not_before=self.send_at)
        fact = self.facts[problem.project_id]
        to_channels = alert_audience(self.channels, fact.county_id, kind, step, problem)
        if to_channels:
            lang = self.ctx.settings.default_language
            view = self.view(problem, STEP_ROLES.get(view_step, "contact"), view_step)
            for channel_row in alert_rows(to_channels, kind=kind, problem=problem, step=step, macro=macro, view=view,
                                          lang=lang, not_before=self.send_at):
                self.rows[channel_row["key"]] = channel_row

    async def flush(self) -> int:
        """Queue this run's messages in a few INSERTs; returns how many were new."""
        return await enqueue_many(self.session, list(self.rows.values()))


async def _open(session: AsyncSession, writer: _Writer, findings: list[Finding], now: dt.datetime) -> list[OpenProblem]:
    """Insert the new problems already at step 1 and queue that step: the INSERT is the claim (a problem
    another run opened first conflicts on the open-problem index, is skipped, and nothing is sent twice)."""
    first: dict[tuple[int, str, str], tuple[list[Person], dict[str, Any]]] = {}
    rows = []
    for f in findings:
        people = writer.audience.for_step(ProblemStep.CONTACT, writer.facts[f.project_id].county_id)
        detail = with_notified({**f.detail, "steps": {str(ProblemStep.CONTACT): writer.send_at.isoformat()}},
                               (p.id for p in people))
        first[(f.project_id, f.kind, f.ref)] = (people, detail)
        rows.append({"project_id": f.project_id, "kind": f.kind, "ref": f.ref, "level": f.level, "detail": detail,
                     "opened_at": now, "step": ProblemStep.CONTACT, "step_at": writer.send_at, "closed_at": None})
    opened: list[OpenProblem] = []
    insert = _insert(session)
    for start in range(0, len(rows), INSERT_CHUNK):
        # no conflict target: the open-problem index (an overlapping run) and (project, kind, ref, opened_at)
        # (a replayed moment, `jobs run --at` in the past) both mean "already recorded"
        stmt = (insert(Problem).values(rows[start:start + INSERT_CHUNK]).on_conflict_do_nothing()
                .returning(*_OPEN_COLUMNS))
        opened += [_open_problem(row, first[(row[1], row[2], row[3])][1]) for row in await session.execute(stmt)]
    for problem in sorted(opened, key=lambda p: p.id):
        people = first[(problem.project_id, problem.kind, problem.ref)][0]
        await writer.send(people, problem, kind="alert", step=ProblemStep.CONTACT, macro="problem",
                          view_step=ProblemStep.CONTACT)
    return opened


def _merged(problem: OpenProblem, finding: Finding) -> dict[str, Any]:
    """The finding's detail, keeping the problem's record of steps and who was alerted."""
    kept = {k: problem.detail[k] for k in ("notified", "steps") if k in problem.detail}
    return {**finding.detail, **kept}


async def _close(session: AsyncSession, writer: _Writer, problems: list[OpenProblem], now: dt.datetime) -> set[int]:
    closed: set[int] = set()
    for problem in problems:
        if problem.project_id not in writer.facts:
            continue  # the project is gone; its problems go with it (cascade)
        result = await session.execute(
            update(Problem).where(Problem.id == problem.id, Problem.closed_at.is_(None))
            .values(closed_at=now).execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another run closed it
        closed.add(problem.id)
        await writer.send(writer.audience.reachable(problem.notified), problem, kind="resolved", step=0,
                          macro="resolved", view_step=problem.step, buttons=False)
    return closed


async def _change_level(
    session: AsyncSession, writer: _Writer, changes: list[tuple[OpenProblem, Finding]], *, worse: bool
) -> list[OpenProblem]:
    """Record level changes; returns the problems as they now stand."""
    changed: list[OpenProblem] = []
    for problem, finding in changes:
        updated = replace(problem, level=finding.level, detail=_merged(problem, finding))
        values: dict[str, Any] = {"level": updated.level, "detail": updated.detail}
        if not worse and problem.step > ProblemStep.NONE:
            values["step_at"] = writer.send_at  # progress made: the escalation clock starts again
            updated = replace(updated, step_at=writer.send_at)
        result = await session.execute(
            update(Problem).where(Problem.id == problem.id, Problem.level == problem.level,
                                  Problem.closed_at.is_(None))
            .values(**values).execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue
        changed.append(updated)
        if worse:
            await writer.send(writer.audience.reachable(problem.notified), updated, kind="alert", step=Light.RED,
                              macro="worse", view_step=problem.step)
    return changed


async def _escalate(
    session: AsyncSession, writer: _Writer, problems: list[OpenProblem], rules: EscalationRules
) -> dict[int, int]:
    taken: dict[int, int] = defaultdict(int)
    for problem in problems:
        fact = writer.facts.get(problem.project_id)
        step = step_due(problem, writer.now, rules, writer.ctx.tz)
        if fact is None or step is None:
            continue
        people = writer.audience.for_step(step, fact.county_id)
        steps = {**problem.detail.get("steps", {}), str(step): writer.send_at.isoformat()}
        detail = with_notified({**problem.detail, "steps": steps}, (p.id for p in people))
        result = await session.execute(
            update(Problem).where(Problem.id == problem.id, Problem.step == problem.step,
                                  Problem.closed_at.is_(None))
            .values(step=step, step_at=writer.send_at, detail=detail).execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another run took this step
        taken[step] += 1
        advanced = replace(problem, step=step, detail=detail)
        await writer.send(people, advanced, kind="alert", step=step, macro="problem", view_step=step)
    return taken


async def run(session: AsyncSession, now: dt.datetime, ctx: JobContext) -> JobResult:
    today = ctx.local(now).date()
    if not is_workday(today):
        # alerts are raised, escalated and cleared on working days, as the office works; the first
        # run of the next working day catches up with whatever changed meanwhile
        return JobResult(details=[ctx.render(ctx.settings.default_language, "cli_alerts.day_off", day=today)])
    rules = EscalationRules.from_settings(ctx.settings)
    facts = await load_project_facts(session, today)
    assessments = assess_all(facts, today, LightRules.from_settings(ctx.settings))
    open_problems = await load_open_problems(session)
    findings = await current_findings(session, facts, assessments, open_problems, now=now, ctx=ctx)
    plan = reconcile(open_problems, findings)
    writer = _Writer(session, ctx, now, {f.id: f for f in facts}, assessments, await county_names(session),
                     await Audience.load(session), await channels_for(session, "alerts"))

    acted = await with_details(session, plan.to_close + [p for p, _ in plan.worse + plan.better])
    detailed = {p.id: p for p in acted}
    closed = await _close(session, writer, [detailed[p.id] for p in plan.to_close], now)
    worse = await _change_level(session, writer, [(detailed[p.id], f) for p, f in plan.worse], worse=True)
    better = await _change_level(session, writer, [(detailed[p.id], f) for p, f in plan.better], worse=False)
    opened = await _open(session, writer, plan.to_open, now)

    # what is open now, as it stands after this run's changes; details read only for the steps due
    current = {p.id: p for p in open_problems if p.id not in closed}
    current.update({p.id: p for p in worse + better + opened})
    due = [p for p in current.values() if step_due(p, now, rules, ctx.tz) is not None]
    known = {p.id for p in worse + better + opened}
    due = [p for p in due if p.id in known] + await with_details(session, [p for p in due if p.id not in known])
    taken = await _escalate(session, writer, sorted(due, key=lambda p: p.id), rules)

    result = JobResult(queued=await writer.flush())
    lang = ctx.settings.default_language
    result.add(ctx.render(lang, "cli_alerts.scanned", projects=len(facts), findings=len(findings)))
    if opened or closed or worse or better:
        result.add(ctx.render(lang, "cli_alerts.changes", opened=len(opened), closed=len(closed), worse=len(worse),
                              better=len(better)))
    if opened:
        taken[1] = taken.get(1, 0) + len(opened)
    for step in sorted(taken):
        result.add(ctx.render(lang, "cli_alerts.step", number=step, count=taken[step]))
    return result


__all__ = ["Audience", "current_findings", "load_open_problems", "run", "with_details"]
