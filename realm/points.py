"""The production point rules of an evaluation, as pure functions.

Per member: each guideline's points are capped at its ``maxPerMember``; WORK points together
are capped at 30 and RESPONSIBILITY points at 20; the total then counts 1-2 as 0, 3-4 as 5,
and is capped at 50.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pek.realm.models import GuidelineCategory

WORK_CAP = 30
RESPONSIBILITY_CAP = 20
TOTAL_CAP = 50


@dataclass(frozen=True, slots=True)
class GuidelineScore:
    category: GuidelineCategory
    max_per_member: int
    points: int


@dataclass(frozen=True, slots=True)
class MemberScore:
    work: int
    responsibility: int
    total: int


def counted_points(points: int, max_per_member: int) -> int:
    """Points of one guideline as they count: never negative, at most ``max_per_member``."""
    return max(0, min(points, max_per_member))


def final_total(raw: int) -> int:
    """Apply the small-total rounding and the overall cap to a member's raw total."""
    if raw <= 2:
        return 0
    if raw <= 4:
        return 5
    return min(raw, TOTAL_CAP)


def member_score(scores: Iterable[GuidelineScore]) -> MemberScore:
    """A member's WORK, RESPONSIBILITY and final points from their per-guideline points."""
    work = responsibility = 0
    for score in scores:
        counted = counted_points(score.points, score.max_per_member)
        if score.category is GuidelineCategory.WORK:
            work += counted
        else:
            responsibility += counted
    work = min(work, WORK_CAP)
    responsibility = min(responsibility, RESPONSIBILITY_CAP)
    total = final_total(work + responsibility)
    return MemberScore(work=work, responsibility=responsibility, total=total)
