"""What a partner's scenario did, step by step, and how it is shown to a person."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pydantic import BaseModel
from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mocks.common.client import Answer

Outcome = Literal["answered", "refused", "not found", "rejected", "failed"]
Model = TypeVar("Model", bound=BaseModel)

_STYLES: dict[Outcome, str] = {
    "answered": "green",
    "refused": "yellow",
    "not found": "cyan",
    "rejected": "yellow",
    "failed": "red",
}


def outcome_of(status: int, readable: bool = True) -> Outcome:
    if 200 <= status < 300:
        return "answered" if readable else "failed"
    if status in (401, 403):
        return "refused"
    if status in (404, 410):
        return "not found"
    if 400 <= status < 500:
        return "rejected"
    return "failed"


def mask_nir(nir: str) -> str:
    """A NIR as a person may see it on a screen: enough to tell two apart, not to reuse."""
    return nir[:1] + "·" * 10 + nir[-4:]


@dataclass(frozen=True, slots=True)
class Step:
    """One request of a scenario, and whether it went the way the partner expected."""

    asked: str
    request: str
    purpose: str | None
    status: int
    outcome: Outcome
    received: str
    as_expected: bool


@dataclass
class ScenarioReport:
    partner: str
    role: str
    purpose: str | None = None
    """The purpose the partner states unless a step says otherwise."""
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return bool(self.steps) and all(step.as_expected for step in self.steps)

    def record(
        self,
        answer: Answer[Model],
        asked: str,
        describe: Callable[[Model], str],
        *,
        purpose: str | None = None,
        expect: Outcome | tuple[Outcome, ...] = ("answered",),
        expect_code: str | None = None,
    ) -> Step:
        """Add a step from an answer; ``describe`` tells what an answered request received.

        The step went as expected when its outcome is one of ``expect`` and, if
        ``expect_code`` is given, the gateway's problem code is that one.
        """
        expected = (expect,) if isinstance(expect, str) else expect
        outcome = outcome_of(answer.status, readable=answer.problem is None)
        if answer.body is not None:
            received = describe(answer.body)
        elif answer.problem is not None:
            detail = answer.problem.detail or answer.problem.title
            received = f"{answer.problem.code}: {detail}"
        else:
            received = "no answer"
        step = Step(
            asked=asked,
            request=answer.request,
            purpose=purpose,
            status=answer.status,
            outcome=outcome,
            received=received,
            as_expected=outcome in expected
            and (
                expect_code is None
                or (answer.problem is not None and answer.problem.code == expect_code)
            ),
        )
        self.steps.append(step)
        return step

    def check(self, asked: str, passed: bool, received: str) -> Step:
        """Add a step the partner does on its own (a signature check, say)."""
        step = Step(
            asked=asked,
            request="(local)",
            purpose=None,
            status=0,
            outcome="answered" if passed else "failed",
            received=received,
            as_expected=passed,
        )
        self.steps.append(step)
        return step


def render(report: ScenarioReport) -> RenderableType:
    table = Table(box=box.SIMPLE_HEAD, expand=True, show_edge=False, pad_edge=False)
    table.add_column("", width=1, no_wrap=True)
    table.add_column("asked", ratio=1, overflow="fold")
    table.add_column("received", ratio=1)
    for step in report.steps:
        mark = Text("✓", style="green") if step.as_expected else Text("✗", style="bold red")
        asked = Text(step.asked)
        if step.request != "(local)":
            asked.append(f"\n{step.request}", style="dim")
        if step.purpose and step.purpose != report.purpose:
            asked.append(f"\npurpose {step.purpose}", style="dim")
        received = Text()
        if step.request != "(local)":
            received.append(f"{step.status} {step.outcome}", style=_STYLES[step.outcome])
            received.append(" · ")
        received.append(step.received)
        table.add_row(mark, asked, received)
    verdict = (
        Text("scenario succeeded", style="bold green")
        if report.succeeded
        else Text("scenario did NOT go as expected", style="bold red")
    )
    verdict.append(f" in {report.seconds:.1f} s", style="dim")
    parts: list[RenderableType] = [table]
    parts.extend(Text(note, style="dim") for note in report.notes)
    parts.append(verdict)
    title = Text.assemble((report.partner, "bold"), f" · {report.role}")
    if report.purpose:
        title.append(f" · purpose {report.purpose}", style="dim")
    return Panel(
        Group(*parts),
        title=title,
        title_align="left",
        border_style="green" if report.succeeded else "red",
    )


def print_report(report: ScenarioReport, console: Console | None = None) -> None:
    (console or Console()).print(render(report))
