"""The merger's shortcuts give the stories the plain computations give, bit for bit."""

from __future__ import annotations

import re
from datetime import datetime
from difflib import SequenceMatcher

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.config import Config
from dedup.merge import clear_caches, mentions, merge, slots, story_to_dict
from dedup.merge import story as story_module
from dedup.merge import text as merge_text
from dedup.merge.align import align_members
from dedup.merge.members import base_scores, doc_cosines, prepare, prepare_all
from dedup.merge.mentions import find_mentions, sides
from dedup.merge.similarity import Similarity, cosine
from dedup.merge.slots import fill_slots
from dedup.normalize import clean_line, clean_text, tokens
from dedup.records import Article
from tests.test_merge import BASE, POOL, clusters


@settings(max_examples=60, deadline=None)
@given(clusters())
def test_document_cosines_equal_dict_cosines_bit_for_bit(articles: list[Article]) -> None:
    cfg = Config().merge
    members = [prepare(a, cfg) for a in sorted(articles, key=lambda a: a.id)]
    got = doc_cosines(members, Similarity(members).vocab)
    assert got is not None
    want = [[float(cosine(a.doc, b.doc)) for b in members] for a in members]
    assert got == want


def test_document_cosines_follow_the_shorter_dicts_order() -> None:
    # Three shared terms whose products round differently when summed in another order.
    a = Article("a", "alpha beta gamma delta. alpha alpha beta.")
    b = Article("b", "gamma delta beta alpha epsilon zeta. gamma gamma gamma delta beta.")
    members = prepare_all([a, b], Config().merge)
    got = doc_cosines(members, Similarity(members).vocab)
    assert got is not None
    assert got[0][1] == cosine(members[0].doc, members[1].doc)
    assert got[1][0] == cosine(members[1].doc, members[0].doc)


@settings(max_examples=40, deadline=None)
@given(clusters())
def test_sparse_and_block_similarity_give_the_dense_story(
    articles: list[Article],
) -> None:
    want = story_to_dict(merge(articles))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Similarity, "dense_max_work", 0)  # sparse products
        assert story_to_dict(merge(articles)) == want
        mp.setattr(Similarity, "full_matrix_max_sentences", 0)  # one block per member
        assert story_to_dict(merge(articles)) == want


def test_prepare_all_shares_repeated_sentences() -> None:
    text = "The bridge closed on Monday.\nOfficials said 12 people were hurt."
    members = prepare_all(
        [Article("a", text), Article("b", text + "\nIt reopens soon."), Article("c", text)],
        Config().merge,
    )
    assert members[0].vectors[0] is members[1].vectors[0]  # shared, not recomputed
    assert members[2].vectors is members[0].vectors  # an exact copy
    sims = Similarity(members)
    assert sims.index.tolist() == [0, 1, 0, 1, 2, 0, 1]


class _NoMemo(dict[tuple[int, int], "float | None"]):
    """A role-score memo that never hits: every pair is scored afresh (the reference)."""

    def __contains__(self, key: object) -> bool:
        return False


def test_memoised_role_scores_change_no_slot() -> None:
    # "Jones" and "Smyth" are compared with the same slot ("Smith"): a memo keyed by the slot
    # alone would hand Smyth the score Jones got and leave the respelling unpaired.
    sentences = [
        "Smith said 143 people were killed in Lima on Monday.",
        "Jones met Smyth and said 144 people were killed in Lima on Monday.",
        "Smith said 143 people died in Lima on Tuesday.",
    ]
    known = frozenset({"Smith", "Jones"})  # names, though they open their sentences
    groups = [find_mentions(s, f"m{k}", known) for k, s in enumerate(sentences)]
    for kind in ("number", "date", "name"):
        kind_groups = [[x for x in g if x.kind == kind] for g in groups]
        fresh = fill_slots(kind_groups, aligned=True, scores=_NoMemo())
        memo: dict[tuple[int, int], float | None] = {}
        plain = fill_slots(kind_groups, aligned=True, scores=memo)
        assert memo, "the memo is used"
        again = fill_slots(kind_groups, aligned=True, scores=memo)  # every score from the memo
        want = [[id(x) for x in s] for s in fresh]
        assert [[id(x) for x in s] for s in plain] == want
        assert [[id(x) for x in s] for s in again] == want
    names = fill_slots([[x for x in g if x.kind == "name"] for g in groups], aligned=True)
    assert ["Smith", "Smyth", "Smith"] in [[x.value for x in slot] for slot in names]


# ----------------------------------------------------------------------------- copies


FURNITURE = [
    "Share this",
    "Exit mobile version",
    "By Jane Doe, Daily Dispatch",
    "Advertisement",
    "Tags: fire, Dayton",
    "Read more: other stories from the region",
]


@st.composite
def syndicated(draw: st.DrawFn) -> list[Article]:
    """2-5 copies of one text, each with its own page furniture, date and title case."""
    picked = draw(st.lists(st.sampled_from(POOL), min_size=0, max_size=6, unique=True))
    title = draw(st.sampled_from(["Chemical plant fire", "", "A fire. Many dead."]))
    out = []
    for k in range(draw(st.integers(2, 5))):
        lines = list(picked)
        for line in draw(st.lists(st.sampled_from(FURNITURE), max_size=3)):
            lines.insert(draw(st.integers(0, len(lines))), line)
        day = draw(st.sampled_from([None, 1, 2]))
        published = datetime(2024, 3, day) if day else None
        out.append(Article(f"m{k}", "\n".join(lines), title=title, published=published))
    return out


def _general_story(articles: list[Article]) -> dict[str, object]:
    """The story without the copies shortcut (every member ordered and aligned)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(story_module, "all_copies", lambda members: False)
        return story_to_dict(merge(articles))


@settings(max_examples=80, deadline=None)
@given(syndicated())
def test_copies_shortcut_gives_the_general_story(articles: list[Article]) -> None:
    assert story_to_dict(merge(articles)) == _general_story(articles)


def test_copies_base_is_the_one_with_least_furniture() -> None:
    text = "\n".join(BASE)
    plain = Article("z", text, title="Fire", published=datetime(2024, 1, 2))
    noisy = Article("a", "Share this\n" + text + "\nAdvertisement", title="Fire")
    members = prepare_all([noisy, plain], Config().merge)
    assert members[1].vectors is members[0].vectors  # one preparation...
    assert members[0].boilerplate > members[1].boilerplate  # ...each its own furniture
    story = merge([noisy, plain])
    assert story.base == "z"
    assert story_to_dict(story) == _general_story([noisy, plain])


@settings(max_examples=40, deadline=None)
@given(syndicated())
def test_base_scores_of_shared_preparations_equal_separate_ones(articles: list[Article]) -> None:
    cfg = Config().merge
    ordered = sorted(articles, key=lambda a: a.id)
    shared = prepare_all(ordered, cfg)
    separate = [prepare(a, cfg) for a in ordered]
    assert base_scores(shared, cfg) == base_scores(separate, cfg)


@settings(max_examples=40, deadline=None)
@given(clusters())
def test_singleton_story_is_the_aligned_member(articles: list[Article]) -> None:
    cfg = Config().merge
    article = articles[0]
    prepared = prepare_all([article], cfg)
    nodes = align_members(prepared, cfg)
    story = merge([article])
    assert story.base == article.id
    assert story.title == prepared[0].title
    assert [s.text for s in story.sentences] == [prepared[0].sentences[n.reps[0][1]] for n in nodes]
    assert all(s.sources == (article.id,) for s in story.sentences)
    assert story.differences == ()


# ----------------------------------------------------------------------------- rewritten scans

_ORIGINAL_NAME_WORD = (
    r"(?:[A-Z][a-z]+(?:[-'][A-Za-z]+)*|[A-Z][A-Za-z]*[A-Z][A-Za-z]*(?:-[A-Za-z0-9]+)*"
    r"|[A-Z]\.(?:[A-Z]\.)*)"
)
_ORIGINAL_NAME = re.compile(
    rf"(?<![\w'-]){_ORIGINAL_NAME_WORD}"
    rf"(?:\s+(?:(?:of|de|van|von|der|al|bin|la|du)\s+)?{_ORIGINAL_NAME_WORD})*"
)
_ORIGINAL_SPLIT_NUMBER = [
    re.compile(r"(?<![\d.,])(\d{1,2})\. (\d)(?!\d*\. [A-Z])"),
    re.compile(r"(?<![\d.,])(\d{1,3}), (000)\b"),
]
_SCAN_TEXT = st.text(alphabet="Ab.'- \n1,0:é_xYZ", max_size=40) | st.sampled_from(POOL)


@settings(max_examples=400, deadline=None)
@given(_SCAN_TEXT)
def test_name_pattern_finds_what_the_look_behind_first_pattern_finds(text: str) -> None:
    want = [(m.span(), m.group(0)) for m in _ORIGINAL_NAME.finditer(text)]
    assert [(m.span(), m.group(0)) for m in mentions.NAME.finditer(text)] == want


@settings(max_examples=400, deadline=None)
@given(_SCAN_TEXT)
def test_number_rejoining_equals_the_look_behind_first_patterns(text: str) -> None:
    for original, (pattern, repl, _) in zip(
        _ORIGINAL_SPLIT_NUMBER, merge_text.SPLIT_NUMBER, strict=False
    ):
        assert pattern.sub(repl, text) == original.sub(repl, text)


_DATE_WORDS = ["May", "March", "Sept.", "Tuesday", "2015", "12", "3rd", "10:45", "am", "p.m.",
               "٣", "2015-03-04", "$", "£", "5,000", "1.5", "million", "%", "x", "1999",
               "ten", "Twenty", "five", "a", "A", "one", "hundred", "and", "dozen", "tens", "sixth",
               "zero"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_DATE_WORDS), max_size=12),
       st.lists(st.sampled_from([" ", ", ", "-", "", "."]), min_size=12, max_size=12))
def test_date_and_number_patterns_equal_their_unprefixed_forms(
    words: list[str], seps: list[str]
) -> None:
    # The look-ahead that lets the engine skip to possible first characters must not
    # change a single match (Unicode digits included).
    text = "".join(w + sep for w, sep in zip(words, seps, strict=False))
    for fast in (mentions.DATE, mentions.NUMBER):
        prefix = fast.pattern.index(")") + 1  # the leading look-ahead
        plain = re.compile(fast.pattern[prefix:], fast.flags)
        assert [m.groupdict() | {"at": m.span()} for m in fast.finditer(text)] == [
            m.groupdict() | {"at": m.span()} for m in plain.finditer(text)]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="aZB1é ,;:.'-\n", max_size=40))
def test_mid_sentence_capitals_equal_the_look_behind_first_pattern(text: str) -> None:
    original = re.compile(r"(?<=[\w,;:] )([A-Z][\w'.-]*)")
    assert mentions.MID_SENTENCE_CAPITAL.findall(text) == original.findall(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="Ab.'- 1é$", max_size=200), st.data())
def test_sides_are_the_nearest_tokens_of_each_slice(text: str, data: st.DataObject) -> None:
    # Texts longer than the scanned window (``_SIDE_CHARS``) exercise the window scan,
    # including windows that start or end inside a token.
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    side = mentions.SIDE_TOKENS
    want = (tokens(text[:start])[-side:], tokens(text[end:])[:side])
    assert sides(text, start, end) == want
    if text.isascii():
        assert sides(text, start, end, text.lower()) == want


@pytest.mark.parametrize("word", ["abcdefghij", "u.s.-led", "wordy", "a"])
def test_sides_at_every_position_of_long_word_text(word: str) -> None:
    # Long words put exactly a few tokens, the first cut, in the scanned window.
    text = " ".join(f"{word}{i}" for i in range(40))
    side = mentions.SIDE_TOKENS
    for start in range(len(text) + 1):
        end = min(len(text), start + 7)
        want = (tokens(text[:start])[-side:], tokens(text[end:])[:side])
        assert sides(text, start, end, text.lower()) == want


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcdeé", max_size=8), st.text(alphabet="abcdeé", max_size=8))
def test_spelling_is_the_sequence_matcher_ratio_or_its_bound(a: str, b: str) -> None:
    matcher = SequenceMatcher(None, a, b)
    if (a or b) and 2.0 * min(len(a), len(b)) / (len(a) + len(b)) < slots.RESPELLING:
        want = 2.0 * min(len(a), len(b)) / (len(a) + len(b))
    elif matcher.quick_ratio() < slots.RESPELLING:
        want = matcher.quick_ratio()
    else:
        want = matcher.ratio()
    clear_caches()
    assert slots.spelling_ratio(a, b) == want


# Pieces that reach every branch of the cleaning: tokenised marks, carriage returns, odd
# blanks, curly quotes, NFKC forms (ligature, full-width, composed and combining), split
# numbers, navigation and furniture lines, abbreviations.
_LINE_PIECES = st.sampled_from([
    "The", "Mr.", "Putin", "said", "143", "144,", "5. 9", "120, 000", "12: 52", "p. m.",
    " ", "  ", "\t", "\u00a0", "\u2009", "\n", "\n\n", "\r", "\r\n", "``", "''", " ,", " .",
    "( ", "$ ", " ' s", "\u201cquote\u201d", "\u2019", "\ufb01ne", "\uff21", "e\u0301",
    "\u0301", "\u1100\u1161", "Share.", "Tags: news", "PREV", "NEXT ten things are "
    "decreasingThe U.S. provided eight new ships to the navy on Tuesday.", "By Jane Doe",
    "killed.", "J.", "U.S.", "attack!", "\u00a9 2024",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE_PIECES, max_size=30).map(" ".join))
def test_clean_line_joins_to_clean_text(text: str) -> None:
    lines = [clean_line(line) for line in text.split("\n")]
    if all(line is not None for line in lines):
        assert "\n".join(lines) == clean_text(text)  # type: ignore[arg-type]


def test_lines_that_need_their_whole_text_say_so() -> None:
    assert clean_line("He said `` no ''") is None
    assert clean_line("one\rtwo") is None
    assert clean_line("  The \u201cfine\u201d  \ufb01ne\t day ") == 'The "fine" fine day'


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE_PIECES, max_size=30).map(" ".join), st.booleans())
def test_content_line_by_line_equals_the_whole_text(text: str, warm: bool) -> None:
    clear_caches()
    if warm:  # lines already cached from another text
        merge_text.read_content(text.replace("\n", "\n\n") + "\nShare.")
    assert merge_text.read_content(text) == merge_text.read_content_whole(text)
