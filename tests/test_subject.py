"""The subject rule: the first 100 user-perceived characters of a message's plain text."""

from __future__ import annotations

import pytest

from board.markup import plain_text, subject_from


def test_markdown_markup_is_removed():
    text = "# Rücksendung\n\nIch möchte **Bestellung 4711** [zurückschicken](https://x.de/r)."
    assert plain_text(text) == "Rücksendung Ich möchte Bestellung 4711 zurückschicken."


def test_lists_code_and_images_keep_their_words():
    text = "- eins\n- zwei\n\n`JJD0001` ![Foto vom Schaden](a.png)\n\n```\nFehler 42\n```"
    assert plain_text(text) == "eins zwei JJD0001 Foto vom Schaden Fehler 42"


def test_whitespace_runs_fold_to_one_space():
    assert subject_from("  Paket\n\n\n   ist\t\tweg  \n") == ("Paket ist weg", False)


@pytest.mark.parametrize(("length", "cut"), [(99, False), (100, False), (101, True)])
def test_exactly_one_hundred_characters_fit(length, cut):
    subject, was_cut = subject_from("x" * length)
    assert was_cut is cut
    assert len(subject) == min(length, 100)


def test_emoji_with_joiners_is_never_split():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # one character
    subject, cut = subject_from("a" * 99 + family + "b")
    assert cut and subject == "a" * 99 + family
    subject, cut = subject_from("a" * 99 + family)
    assert not cut and subject.endswith(family)


def test_combining_accent_stays_with_its_letter():
    e_acute = "e\u0301"  # é as e + combining acute: one character for the reader
    subject, cut = subject_from(e_acute * 101)
    assert cut and subject == e_acute * 100


def test_flags_and_skin_tones_count_as_one_character():
    flag, thumbs = "\U0001f1e9\U0001f1ea", "\U0001f44d\U0001f3fd"
    subject, cut = subject_from((flag + thumbs) * 50 + "!")
    assert cut and subject == (flag + thumbs) * 50


def test_right_to_left_text_is_cut_by_characters_too():
    arabic = "مرحبا بكم في متجرنا "  # 20 characters
    subject, cut = subject_from(arabic * 6)
    assert cut and subject == (arabic * 5).rstrip()


def test_a_cut_does_not_end_in_a_space():
    subject, cut = subject_from("a" * 99 + " " + "b" * 10)
    assert cut and subject == "a" * 99


def test_text_of_only_markup_gives_an_empty_subject():
    assert subject_from("---\n\n***") == ("", False)
