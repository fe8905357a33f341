"""Shared fixtures: the seed pair, hand-written distractors, and the ecbplus-dev split."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# CI runs the same examples every time (a failure there is reproducible); local runs
# explore new ones.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
# The ECB+ dev split ships with the repository (see its README there for the licence).
ECBPLUS = ROOT / "benchmarks" / "data" / "ecbplus-dev" / "articles.jsonl"
SEED_IDS = ("000_ad9cb973c98234b4", "004_7929c3090c429e95")

# Written for these tests: each shares topic words or names with the seeds but reports
# another event, so it must never join the seeds' cluster.
DISTRACTORS: list[dict[str, Any]] = [
    {
        "id": "moscow-metro-2010",
        "title": "Two suicide bombers hit Moscow metro at rush hour",
        "text": (
            "Two female suicide bombers blew themselves up on the Moscow metro on March 29, "
            "2010, killing 40 people at the Lubyanka and Park Kultury stations.\n"
            "Russian officials blamed militants from the North Caucasus, and Doku Umarov "
            "later claimed responsibility in a video message.\n"
            "President Dmitry Medvedev vowed to find and destroy the organisers.\n"
            "Share.\nTags: Moscow, metro, bombing"
        ),
    },
    {
        "id": "moscow-city-day",
        "title": "Moscow celebrates City Day with concerts and fireworks",
        "text": (
            "Moscow marked City Day on Saturday with open-air concerts in Gorky Park, a "
            "parade on Tverskaya Street and fireworks over the Moskva river.\n"
            "Mayor Sergei Sobyanin said more than 2 million people joined the festivities "
            "across the Russian capital.\n"
            "Police reported no serious incidents during the celebrations."
        ),
    },
    {
        "id": "paris-bataclan-2015",
        "title": "Gunmen kill 90 at Bataclan concert hall in Paris",
        "text": (
            "Gunmen stormed the Bataclan concert hall in Paris on November 13, 2015, killing "
            "90 people during a rock concert, part of coordinated attacks that killed 130.\n"
            "The Islamic State claimed responsibility for the massacre, the deadliest attack "
            "in France since the Second World War.\n"
            "President Francois Hollande declared a state of emergency and closed the "
            "borders.\nPREV French markets open lower\nNEXT Weather: rain in Paris"
        ),
    },
    {
        "id": "kabul-airport-2021",
        "title": "Suicide bombing at Kabul airport kills 170",
        "text": (
            "A suicide bomber struck crowds outside Kabul airport on August 26, 2021, "
            "killing about 170 Afghans and 13 US service members during the evacuation.\n"
            "Islamic State Khorasan, known as ISIS-K, claimed the attack.\n"
            "US officials said they had warned of a specific threat at the Abbey Gate hours "
            "before the blast."
        ),
    },
    {
        "id": "bakery-prize",
        "title": "Village bakery wins national sourdough prize",
        "text": (
            "A family bakery in the village of Ambleside has won the national sourdough "
            "prize for its rye loaf, judges announced on Tuesday.\n"
            "The owners, who opened the shop in 1998, said the recipe came from a "
            "grandmother in Latvia.\nExit mobile version"
        ),
    },
]


def read_seeds() -> list[dict[str, Any]]:
    """The seed articles as the .txt reader sees them: title = first non-empty line."""
    out = []
    for path in sorted(SEEDS.glob("*.txt")):
        content = path.read_text(encoding="utf-8")
        title = next(line.strip() for line in content.splitlines() if line.strip())
        out.append({"id": path.stem, "title": title, "text": content})
    return out


def read_ecbplus() -> list[dict[str, Any]]:
    with ECBPLUS.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture
def seeds() -> list[dict[str, Any]]:
    return read_seeds()


@pytest.fixture
def distractors() -> list[dict[str, Any]]:
    return [dict(d) for d in DISTRACTORS]


@pytest.fixture(scope="session")
def ecbplus() -> list[dict[str, Any]]:
    if not ECBPLUS.exists():
        pytest.fail(f"{ECBPLUS} is missing: it is part of the repository; restore it")
    return read_ecbplus()
