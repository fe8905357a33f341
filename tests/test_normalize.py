from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dedup.normalize import (
    STOPWORDS,
    clean_text,
    is_boilerplate,
    names,
    numbers,
    split_sentences,
    strip_boilerplate,
    tokens,
    without_stopwords,
)
from tests.conftest import read_seeds


def test_seed_furniture_is_stripped() -> None:
    for seed in read_seeds():
        kept = "\n".join(strip_boilerplate(clean_text(seed["text"])))
        for junk in ("PREV", "NEXT", "Tags:", "Share.", "Exit mobile version",
                     "The article is in Lithuanian"):
            assert junk not in kept
    lines = strip_boilerplate(clean_text(read_seeds()[0]["text"]))
    assert lines[0] == "US officials had warned Russia about a specific terrorist target"
    assert sum(line.startswith("US officials had warned") for line in lines) == 1


def test_sentences_mentioning_share_or_next_survive() -> None:
    for line in ("Next year the share of exports rose to 40 percent.",
                 "By Tuesday, rescuers had pulled 12 survivors from the rubble of the hotel.",
                 "Share prices fell sharply after the announcement on Monday.",
                 "Share the load with your neighbours, the mayor said.",
                 "Listen to the victims, she told the court on Monday.",
                 "Listen to this story, she told the jury.", "Listen to this article first.",
                 "Reporting by Reuters showed the minister lied.",
                 "Writing by hand is an art, she said.",
                 # A one-sentence paragraph is no byline, short or not (it was dropped).
                 "By Monday, 12 were dead.", "By noon, the fire was out.",
                 "By all indications, he is a solid investment.",
                 "By Monday, the death toll was 45.", "By Friday, 12 had died in the U.S.",
                 # A third review: short tails, and "Written by" opening a sentence.
                 "By Monday, he was out.", "By Friday, the UN was due.",
                 "Written by Aaron Sorkin, it won an Emmy."):
        assert not is_boilerplate(line)
    for line in ("Share.", "Tags: a, b", "PREV Some other story", "NEXT Another one",
                 "Exit mobile version", "By John Smith", "Advertisement", "----",
                 "Share this article", "Share this story.", "Listen to this article · 4 min",
                 "Listen to this story (2:31)", "Listen to this article: 5 minutes",
                 "Listen to this article · 4 min read",
                 "Reporting by Marco Aquino in Lima; Additional reporting by Ana Ruiz and "
                 "Tom Hale; Editing by Jane Doe", "Editing by Jane Doe.",
                 "By Ana Lee and Tom Hale", "By J. Smith Jr.", "BY JOHN SMITH, Reuters",
                 # A review: names with particles, an agency, a full stop after an outlet.
                 "By Carlos de la Cruz, Reuters", "By Ahmed al-Sayed", "By the Associated Press",
                 "By Jane Doe, Associated Press.", "By Andrew Smith, BBC News, Washington.",
                 "(Reporting by Jane Doe; Editing by Mark Potter)",
                 "Reporting by Mohammed al-Sherbini; Editing by Mark Potter",
                 "By Jane Doe, Reuters staff", "By Jane Doe and Tom Hale, staff writers",
                 "By Maria dos Santos", "By Oscar di Giorgio, Reuters",
                 "By Ana Lee, updated 5 mins ago",
                 # A fourth review: other ways outlets write them.
                 "By Jane Doe on March 3, 2024", "By: Jane Doe", "By Jane Doe (AP)",
                 "By Jane Doe - Reuters", "By Jane Doe / Bloomberg",
                 "By Jane Doe, Associated Press Jan. 3, 2024, 5:32 p.m. ET",
                 "Reporting by Jane Doe in Beijing, Editing by John Smith"):
        assert is_boilerplate(line)


def test_tokenised_quotes_are_rejoined() -> None:
    assert clean_text("`` We appreciate it , '' the actress ' s rep said .") == (
        '"We appreciate it," the actress\'s rep said.'
    )


@given(st.text())
def test_clean_text_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once


def test_sentence_split_respects_abbreviations() -> None:
    got = split_sentences(["Mr. Putin met U.S. envoys. Then J. Smith left! It rained."])
    assert got == ["Mr. Putin met U.S. envoys.", "Then J. Smith left!", "It rained."]


def test_names_and_numbers() -> None:
    found = names(["The Islamic State claimed the attack on Crocus City Hall."])
    assert "islamic_state" in found and "crocus_city_hall" in found and "the" not in found
    assert numbers("At least 1,143 people, up from 143.") == ["1143", "143"]


def test_without_stopwords_keeps_the_other_words_in_order() -> None:
    words = tokens("The Qeshm quake was felt in the island and it killed 3 of them")
    assert without_stopwords(words) == [w for w in words if w not in STOPWORDS]
    assert without_stopwords(words)[:2] == ["qeshm", "quake"]
