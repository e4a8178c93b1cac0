"""The matching model: names in any script, scores a data steward can trust, evidence that adds up.

Data comes from the generator in `threadline.resolution.synthetic` (truth known by construction) plus a
few hand-made people whose records a reader can check by eye.
"""

from __future__ import annotations

from collections import Counter

import pytest

from threadline.resolution.model import RECORD_COLUMNS, ScoredPair, cluster, score_pairs
from threadline.resolution.names import latin_name, latin_place
from threadline.resolution.synthetic import generate


def record(unique_id: str, **fields: str | None) -> dict[str, str | None]:
    return {column: fields.get(column) for column in RECORD_COLUMNS} | {"unique_id": unique_id}


# Hand-made people, added to generated ones so the model has a crowd to learn from.
MARGARET = record(
    "hand-1", first_name="Margaret", last_name="Thornbury", birth_date="1971-04-09",
    email="margaret.thornbury@example.org", phone="+14155550123", street="12 Larch Street", postcode="94110",
    city="San Francisco",
)  # fmt: skip
PEGGY = record(  # the same woman: a nickname, a typo in the surname, day and month swapped, new email
    "hand-2", full_name="Peggy Thornbery", birth_date="1971-09-04", email="peggy@thornbery.net",
    phone="+14155550123", street="12 Larch St", postcode="94110", city="San Francisco",
)  # fmt: skip
DAVID = record(  # her husband: same household, other name and birthday
    "hand-3", first_name="David", last_name="Thornbury", birth_date="1968-11-30",
    email="dthornbury@example.com", phone="+14155550123", street="12 Larch Street", postcode="94110",
    city="San Francisco",
)  # fmt: skip
ZHANG_HAN = record(
    "hand-4", full_name="张伟", birth_date="1990-02-17", phone="+8613800138000", street="南京路12号",
    postcode="200001", city="上海市",
)  # fmt: skip
ZHANG_LATIN = record(  # the same man on the international web shop: pinyin, surname first
    "hand-5", full_name="Zhang Wei", birth_date="1990-02-17", email="zhangwei1990@163.com",
    phone="+8613800138000",
)  # fmt: skip
OTHER_ZHANG = record(  # a namesake: one of the commonest names in China, nothing else shared
    "hand-6", first_name="Wei", last_name="Zhang", birth_date="1985-07-30", email="wzhang85@qq.com",
    phone="+8613912345678", street="人民路8号", postcode="310000", city="杭州",
)  # fmt: skip
HAND_MADE = [MARGARET, PEGGY, DAVID, ZHANG_HAN, ZHANG_LATIN, OTHER_ZHANG]


@pytest.fixture(scope="module")
def crowd() -> list[dict[str, str | None]]:
    return [*generate(600, seed=3).to_pylist(), *HAND_MADE]


@pytest.fixture(scope="module")
def scored(crowd: list[dict[str, str | None]]) -> dict[tuple[str, str], ScoredPair]:
    return {(p.left_id, p.right_id): p for p in score_pairs(crowd, threshold=0.0)}


def probability(scored: dict[tuple[str, str], ScoredPair], a: str, b: str) -> float:
    pair = scored.get((min(a, b), max(a, b)))
    return pair.match_probability if pair else 0.0  # not even a candidate


@pytest.mark.parametrize(
    ("first", "last", "full"),
    [
        ("伟", "张", None),
        (None, None, "张伟"),
        ("Wei", "Zhang", None),
        ("Zhang", "Wei", None),  # fields swapped
        (None, None, "Zhang Wei"),  # surname first, as written in China
        (None, None, "ZHANG Wei"),
        (None, None, "Zhang, Wei"),
        (None, None, "Wei Zhang"),
    ],
)
def test_chinese_and_latin_forms_of_one_name_share_a_key(
    first: str | None, last: str | None, full: str | None
) -> None:
    assert latin_name(first, last, full).key == "wei zhang"


def test_names_are_romanised_like_a_passport() -> None:
    assert latin_name(None, None, "欧阳娜娜") == latin_name("Nana", "Ouyang", None)  # two-character surname
    assert latin_name(None, None, "曾小明").family == "zeng"  # a surname's own reading, not "ceng"
    assert latin_name(None, None, "吕布").family == "lu"
    assert latin_name("José", "Müller", None).key == "jose muller"
    assert latin_name("Bob", "Smith", None).formal_given == "robert"
    assert latin_place("上海市") == latin_place("Shanghai") == "shanghai"


def test_a_corrupted_duplicate_scores_above_0_9(scored: dict[tuple[str, str], ScoredPair]) -> None:
    assert probability(scored, "hand-1", "hand-2") > 0.9  # nickname, typo, swapped date, new email
    assert probability(scored, "hand-4", "hand-5") > 0.9  # 张伟 and Zhang Wei with one phone and birthday


def test_different_people_score_low(scored: dict[tuple[str, str], ScoredPair]) -> None:
    assert probability(scored, "hand-1", "hand-3") < 0.1  # wife and husband: one address, one phone
    assert probability(scored, "hand-4", "hand-6") < 0.1  # namesakes
    assert probability(scored, "hand-5", "hand-6") < 0.1


def test_han_and_pinyin_names_reach_a_name_level(scored: dict[tuple[str, str], ScoredPair]) -> None:
    pair = scored[("hand-4", "hand-5")]
    name = next(e for e in pair.evidence if e.comparison == "name")
    assert name.level == "exact (any order)"
    assert (name.left, name.right) == ("张伟", "Zhang Wei")
    assert name.weight > 0


def test_evidence_adds_up_to_the_match_weight(scored: dict[tuple[str, str], ScoredPair]) -> None:
    assert scored
    for pair in scored.values():
        assert pair.left_id < pair.right_id
        assert [e.comparison for e in pair.evidence] == ["name", "birth_date", "email", "phone", "address"]
        total = pair.prior_weight + sum(e.weight for e in pair.evidence)
        assert total == pytest.approx(pair.match_weight, abs=1e-6)
        assert pair.match_probability == pytest.approx(1 / (1 + 2**-pair.match_weight), abs=1e-9)
        assert all(e.weight == 0 for e in pair.evidence if e.level == "null")


def test_a_shared_phone_between_different_given_names_carries_no_weight(
    scored: dict[tuple[str, str], ScoredPair],
) -> None:
    household = scored[("hand-1", "hand-3")]
    phone = next(e for e in household.evidence if e.comparison == "phone")
    assert phone.level == "shared by people with different given names"
    assert phone.weight == pytest.approx(0.0)


def test_generated_people_are_found(
    crowd: list[dict[str, str | None]], scored: dict[tuple[str, str], ScoredPair]
) -> None:
    person = {r["unique_id"]: r["person"] for r in crowd if r.get("person")}
    sizes = Counter(person.values())
    true_pairs = sum(n * (n - 1) // 2 for n in sizes.values())
    found = [
        p
        for p in scored.values()
        if p.match_probability >= 0.5 and p.left_id in person and p.right_id in person
    ]
    right = sum(person[p.left_id] == person[p.right_id] for p in found)
    assert right / len(found) > 0.9  # precision
    assert right / true_pairs > 0.8  # recall


def test_results_are_deterministic(
    crowd: list[dict[str, str | None]], scored: dict[tuple[str, str], ScoredPair]
) -> None:
    again = {(p.left_id, p.right_id): p for p in score_pairs(crowd, threshold=0.0)}
    assert again.keys() == scored.keys()
    for key, pair in scored.items():
        assert again[key].match_probability == pytest.approx(pair.match_probability, abs=1e-9)
        assert [e.level for e in again[key].evidence] == [e.level for e in pair.evidence]


def test_a_handful_of_records_is_scored_with_the_fallback_weights() -> None:
    progress: list[str] = []
    pairs = score_pairs(
        [ZHANG_HAN, ZHANG_LATIN, OTHER_ZHANG, MARGARET], progress=lambda s, _: progress.append(s)
    )
    assert [(p.left_id, p.right_id) for p in pairs] == [("hand-4", "hand-5")]
    assert progress[0] == "preparing records" and progress[-1] == "done"


def test_no_records_or_no_candidates_give_no_pairs() -> None:
    assert score_pairs([]) == []
    assert score_pairs([MARGARET, ZHANG_HAN]) == []


def test_records_need_distinct_ids() -> None:
    with pytest.raises(ValueError, match="1 repeated"):
        score_pairs([MARGARET, MARGARET | {"email": None}])
    with pytest.raises(ValueError, match="1 missing"):
        score_pairs([MARGARET, PEGGY | {"unique_id": None}])


def test_cluster_joins_pairs_above_the_threshold() -> None:
    def pair(a: str, b: str, p: float) -> ScoredPair:
        return ScoredPair(a, b, p, 0.0, 0.0, ())

    pairs = [pair("a", "b", 0.99), pair("b", "c", 0.95), pair("d", "e", 0.4), pair("e", "f", 0.97)]
    assert cluster(pairs, 0.9) == [{"a", "b", "c"}, {"e", "f"}]
    assert cluster(pairs, 0.3) == [{"a", "b", "c"}, {"d", "e", "f"}]


def test_the_generator_is_deterministic_and_mixes_scripts() -> None:
    first, second = generate(400, seed=9), generate(400, seed=9)
    assert first.equals(second)
    assert not first.equals(generate(400, seed=10))
    rows = first.to_pylist()
    assert len(rows) == 400 and len({r["unique_id"] for r in rows}) == 400
    scripts: dict[str, set[bool]] = {}
    for r in rows:
        name = r["full_name"] or f"{r['first_name']} {r['last_name']}"
        scripts.setdefault(r["person"], set()).add(name.isascii())
    assert any(both == {True, False} for both in scripts.values())  # one person in Han and in Latin script
    assert Counter(len(s) for s in scripts.values())[1] > 0
    easy = generate(400, seed=9, easy=True).to_pylist()
    assert all((r["full_name"] or f"{r['first_name']} {r['last_name']}").isascii() for r in easy)
