"""Values in a run's content and where each entered the run (agentlab.analysis._values)."""

from __future__ import annotations

from typing import Any

import pytest

from agentlab.analysis._values import (
    Holding,
    ValueIndex,
    as_value,
    holds,
    number_key,
    values_in,
)


def _keys(content: Any, **kw: Any) -> set[str]:
    return set(values_in(content, **kw))


def _value(x: Any) -> Any:
    v = as_value(x)
    assert v is not None, x
    return v


# -- what a value is --------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "key"), [
    ("$1,200.50", "1200.5"),
    ("1200.5", "1200.5"),
    ("1,200.500", "1200.5"),
    ("€40", "40"),
    ("-$3.10", "-3.1"),
    ("12%", "12"),
    ("007", "7"),
    ("0.0", "0"),
])
def test_numbers_are_one_value_however_they_are_written(written: str, key: str) -> None:
    assert number_key(written) == key
    assert _keys(f"the total is {written} today") == {key}


def test_a_number_in_prose_and_in_structured_content_is_the_same_value() -> None:
    said = values_in("Refunded $1,200.50 to your card.")
    result = values_in({"order": {"total": 1200.5, "lines": [1200.50]}})
    assert said["1200.5"].kind == result["1200.5"].kind == "number"
    assert said["1200.5"].text == "$1,200.50"  # the first spelling is kept
    assert _value("$1,200.50").key == _value(1200.5).key == _value("1200.50").key == "1200.5"


def test_not_numbers() -> None:
    assert number_key("abc") is None and number_key("Infinity") is None
    assert number_key("NaN") is None
    assert as_value(True) is None and as_value(None) is None
    assert as_value("a") is None  # one character is no text value


@pytest.mark.parametrize(("text", "key"), [
    ("shipped on 19/02/2009 by post", "19/02/2009"),
    ("delivery 2024-03-05 before noon", "2024-03-05"),
    ("a lap of 1:41.614 at Monza", "1:41.614"),
    ("booked at 10:30 sharp", "10:30"),
])
def test_dates_and_times_are_text_values_not_numbers(text: str, key: str) -> None:
    vals = values_in(text)
    assert key in vals and vals[key].kind == "text"
    # their parts are not numbers of their own
    assert not any(v.kind == "number" for v in vals.values()), vals


@pytest.mark.parametrize(("text", "key"), [
    ("order Z7GOZK was cancelled", "z7gozk"),
    ("user olivia_gonzalez_2305 asked", "olivia_gonzalez_2305"),
    ("payment PAY-77821 failed", "pay-77821"),
    ("the IOC ruled", "ioc"),
])
def test_identifiers_are_values_case_folded(text: str, key: str) -> None:
    vals = values_in(text)
    assert key in vals and vals[key].kind == "text"


def test_quoted_bold_and_code_spans_are_values() -> None:
    vals = values_in('pick the "blue widget", the **Premium Plan** or `gift card`')
    assert {"blue widget", "premium plan", "gift card"} <= set(vals)
    assert vals["premium plan"].text == "Premium Plan"
    # a quoted number is a number
    assert values_in('the answer is "1,200"')["1200"].kind == "number"


def test_a_capitalised_name_of_two_words_or_more_is_a_value_one_word_is_not() -> None:
    assert _keys("Mary Jane Watson met the team") == {"mary jane watson"}
    assert _keys("Bank of England raised rates") == {"bank of england"}
    assert _keys("Paris is lovely") == set()


def test_prose_words_are_not_values_unless_asked_for() -> None:
    text = "Please refund my order quickly, thank you."
    assert _keys(text) == set()
    assert {"please", "refund", "order", "quickly"} <= _keys(text, words=True)


def test_a_short_string_field_is_a_value_whole_prose_is_not() -> None:
    vals = values_in({"city": "New york", "note": "Call the customer back tomorrow please."})
    assert "new york" in vals
    assert not any("customer" in k for k in vals)
    assert _keys({"flag": True, "none": None}) == set()


def test_fenced_code_can_be_skipped() -> None:
    text = "The id is W777777.\n```\nprint('X9Y9Z9')\n```"
    assert {"w777777", "x9y9z9"} <= _keys(text)
    assert "x9y9z9" not in _keys(text, code=False) and "w777777" in _keys(text, code=False)


# -- specificity ------------------------------------------------------------------------------


def test_specificity_orders_values_by_how_unlikely_a_chance_match_is() -> None:
    spec = {x: _value(x).specificity for x in
            ("2", "12", "2024", "345", "950000", "1.445", "Z7GOZK", "19/02/2009")}
    assert spec["2"] < spec["12"] < spec["2024"] < spec["345"] < spec["950000"]
    assert spec["2"] < spec["Z7GOZK"] and spec["12"] < spec["19/02/2009"]
    assert spec["1.445"] >= spec["950000"]
    # a one-digit number never identifies anything; an id or an amount does
    assert spec["2"] < 0.6 <= min(spec["Z7GOZK"], spec["950000"], spec["1.445"])


def test_text_specificity_grows_with_length_and_digits() -> None:
    assert _value("ok").specificity < _value("blue").specificity < _value("widget").specificity
    assert _value("widget").specificity < _value("W123456").specificity


# -- holds ------------------------------------------------------------------------------------


def test_holds_a_number_however_it_is_written() -> None:
    amount = _value("$1,200.50")
    assert holds({"total": 1200.5}, amount)
    assert holds("we refunded 1200.50 EUR", amount)
    assert not holds("we refunded 1200.51 EUR", amount)
    assert not holds("order 12005", amount)


def test_holds_text_as_a_whole_word_or_phrase_only() -> None:
    paris = _value("Paris")
    assert holds("The capital is paris.", paris)
    assert holds({"city": "PARIS"}, paris)
    assert not holds("Parisian food", paris)
    phrase = _value("New York")
    assert holds("flights to new-york today", phrase)  # any separator between the words
    assert not holds("new yorker", phrase)


# -- provenance -------------------------------------------------------------------------------


def _index() -> ValueIndex:
    index = ValueIndex()
    index.add(2, "input", "Refund order W123456, please")
    index.add(3, "arguments", {"order_id": "W123456"})
    index.add(3, "result", {"order_id": "W123456", "total": 1200.5,
                                 "note": "The parcel was delivered to the door."})
    index.add(5, "output", "I refunded $1,200.50 for W123456")
    index.add(6, "arguments", {"payment_id": "PAY-999", "amount": 1200.5})
    return index


def test_origin_is_the_earliest_holder_before_a_point() -> None:
    index = _index()
    assert index.origin("w123456") == Holding(2, "input")
    assert index.origin("w123456", before=3) == Holding(2, "input")
    assert index.origin("w123456", before=2) is None  # nothing before the first holder
    assert index.origin("1200.5") == Holding(3, "result")
    assert index.origin("1200.5", before=3) is None
    assert index.origin("1200.5", before=4) == Holding(3, "result")
    assert index.origin("pay-999", before=6) is None  # first seen in the write itself
    assert index.origin("pay-999") == Holding(6, "arguments")
    assert index.origin("not-there") is None


def test_holders_lists_every_part_in_order() -> None:
    index = _index()
    assert index.holders("w123456") == [Holding(2, "input"), Holding(3, "arguments"),
                                        Holding(3, "result"), Holding(5, "output")]
    value = index.value("1200.5")
    assert value is not None and value.text == "1200.5" and value.kind == "number"
    assert index.value("nope") is None


def test_find_text_finds_a_value_a_caller_brings_in_prose() -> None:
    index = _index()
    # "delivered" is a word of a result's prose: no value of the index, but find_text sees it
    assert index.value("delivered") is None
    assert index.find_text(_value("delivered")) == Holding(3, "result")
    assert index.find_text(_value("delivered"), before=3) is None
    assert index.find_text(_value("refund")) == Holding(2, "input")
    assert index.find_text(_value("refunded")) == Holding(5, "output")
    assert index.find_text(_value("deliver")) is None  # whole words only


def test_long_numbers_are_not_rounded_into_each_other() -> None:
    a, b = "123456789012345678901234567890", "123456789012345678901234567899"
    assert number_key(a) != number_key(b) and number_key(a) == a
