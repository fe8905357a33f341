"""Edge cases of the patterns rewritten for speed (issue #6): outputs pinned to those of
the earlier patterns, which the batch pipeline, the merger and the index all share."""

from __future__ import annotations

import pytest

from dedup.normalize import clean_text, names, numbers, split_sentences, years


@pytest.mark.parametrize(("text", "expected"), [
    ("1,500 people, 3.5% and 7. Then x2 9a 10.", ["1500", "3.5", "7", "10"]),
    ("a1 2b 3 4.5.6, 7,,8 ٣ 12", ["3", "4.5.6", "78", "٣", "12"]),
    ("2024-05-10: 40 dead, 1.", ["2024", "05", "10", "40", "1"]),
    ("", []),
])
def test_numbers_need_a_word_boundary_on_both_sides(text: str, expected: list[str]) -> None:
    assert numbers(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("In 1949, 1950 and 2099; not 2100 or x2015 or 20155 but (2015).",
     ["1950", "2015", "2099"]),
    ("a1999 1999b 2000\n2001", ["2000", "2001"]),
])
def test_years_need_a_word_boundary_on_both_sides(text: str, expected: list[str]) -> None:
    assert years(text) == expected


def test_names_phrases_and_words() -> None:
    sentences = ["Mr. Putin met Angela Merkel of Germany in New York.",
                 "The U.S. Army and IS-K fighters", "But Moscow's mayor Sergei Sobyanin",
                 "Xi\tJinping"]
    assert names(sentences) == [
        "mr_putin", "mr", "putin", "angela_merkel_germany", "angela", "merkel", "germany",
        "new_york", "new", "york", "u.s_army", "u.s", "army", "is-k", "moscow's",
        "sergei_sobyanin", "sergei", "sobyanin", "xi_jinping", "xi", "jinping"]


def test_sentence_ends_after_abbreviations_and_initials() -> None:
    lines = ['Mr. Putin spoke. He left! J. Smith said "Go." Then U.S. troops came.. Next one',
             "etc.. Then a. B", "He said \"Yes.\" 'No.' (Maybe.) Fine"]
    assert split_sentences(lines) == [
        "Mr. Putin spoke.", "He left!", 'J. Smith said "Go."', "Then U.S. troops came..",
        "Next one", "etc..", "Then a. B", 'He said "Yes."', "'No.' (Maybe.)", "Fine"]


@pytest.mark.parametrize(("text", "expected"), [
    ("`` We appreciate it , '' the actress ' s rep said .",
     '"We appreciate it," the actress\'s rep said.'),
    ("a\u00a0 b\t\tc  d\r\ne", "a b c d\ne"),
    ("“Quoted” ‘x’ „y”", "\"Quoted\" 'x' \"y\""),
    ("price $ 5 ( or [ 6 ] ) - 3 - 4", "price $5 (or [6]) - 3-4"),
    ("no marks here, just text.", "no marks here, just text."),
])
def test_clean_text_blanks_and_tokenised_marks(text: str, expected: str) -> None:
    assert clean_text(text) == expected
