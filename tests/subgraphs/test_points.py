"""The production point rules (pure functions)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pek.realm.models import GuidelineCategory
from pek.realm.points import GuidelineScore, counted_points, final_total, member_score

W, R = GuidelineCategory.WORK, GuidelineCategory.RESPONSIBILITY


def test_small_totals_round() -> None:
    assert [final_total(n) for n in range(7)] == [0, 0, 0, 5, 5, 5, 6]
    assert final_total(49) == 49
    assert final_total(50) == 50


def test_each_guideline_is_capped_at_its_maximum() -> None:
    assert counted_points(14, 10) == 10
    assert counted_points(-3, 10) == 0
    score = member_score([GuidelineScore(W, 10, 14), GuidelineScore(R, 5, 9)])
    assert (score.work, score.responsibility, score.total) == (10, 5, 15)


def test_category_caps_then_total_cap() -> None:
    score = member_score(
        [GuidelineScore(W, 20, 20), GuidelineScore(W, 20, 20), GuidelineScore(R, 15, 15),
         GuidelineScore(R, 15, 15)]
    )
    assert (score.work, score.responsibility) == (30, 20)
    assert score.total == 50


def test_rounding_applies_to_the_capped_sum() -> None:
    # 2 WORK + 2 RESPONSIBILITY = 4 -> 5 ; 1 + 1 = 2 -> 0
    assert member_score([GuidelineScore(W, 10, 2), GuidelineScore(R, 10, 2)]).total == 5
    assert member_score([GuidelineScore(W, 10, 1), GuidelineScore(R, 10, 1)]).total == 0


scores = st.lists(
    st.builds(
        GuidelineScore,
        st.sampled_from([W, R]),
        st.integers(min_value=0, max_value=40),
        st.integers(min_value=-5, max_value=60),
    ),
    max_size=8,
)


@given(scores)
def test_invariants(items: list[GuidelineScore]) -> None:
    score = member_score(items)
    assert 0 <= score.work <= 30
    assert 0 <= score.responsibility <= 20
    assert score.total in {0, 5} or 5 <= score.total <= 50
    raw = score.work + score.responsibility
    assert score.total == (0 if raw <= 2 else 5 if raw <= 4 else raw)
