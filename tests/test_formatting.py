"""Small shared readings: typed number lists and durations."""
import pytest

from core.formatting import count, format_seconds, parse_int_list

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text, values", [("1,16", [1, 16]), ("1 16", [1, 16]), (" 0, 2 ,4 ", [0, 2, 4]),
                                          ("1,2,", [1, 2]), ("7", [7])])
def test_numbers_are_separated_by_commas_or_spaces(text, values):
    assert parse_int_list(text, "Batch sizes") == values


@pytest.mark.parametrize("text, message", [("1 x", "whole numbers separated by commas"), ("", "at least one"),
                                           ("2.5", "whole numbers"), ("1,,16", "empty place between two commas"),
                                           (",16", "empty place"), ("1, ,16", "empty place"),
                                           ("1,x" + "0" * 10_000, r"got '1,x0{57}…'\.")])
def test_bad_lists_are_refused_in_a_sentence(text, message):
    with pytest.raises(ValueError, match=message):
        parse_int_list(text, "Batch sizes")


def test_durations_read_as_people_read_them():
    assert [format_seconds(s) for s in (42, 185, 7620)] == ["42 s", "3 min 05 s", "2 h 07 min"]


@pytest.mark.parametrize("number, noun, said", [(1, "step", "1 step"), (0, "step", "0 steps"), (2, "line", "2 lines"),
                                                (16000, "token", "16,000 tokens")])
def test_a_count_takes_the_nouns_form_for_its_number(number, noun, said):
    assert count(number, noun) == said
