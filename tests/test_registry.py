"""bireid.registry.Registry: lookup, listing, close-match errors, duplicates."""

from __future__ import annotations

import pytest

from bireid.registry import Registry, UnknownNameError


def make() -> Registry:
    reg: Registry = Registry("colour")
    reg.add("red", 1)

    @reg.register("green")
    def green() -> int:
        return 2

    reg.add("grey", 3)
    return reg


def test_lookup_listing_and_membership():
    reg = make()
    assert reg.get("red") == 1 and reg.get("green")() == 2
    assert reg.names() == ["green", "grey", "red"] and list(reg) == reg.names() and len(reg) == 3
    assert "grey" in reg and "blue" not in reg and 5 not in reg
    assert reg.values()[0] is reg.get("green")


def test_unknown_name_names_the_kind_close_matches_and_every_name():
    reg = make()
    with pytest.raises(UnknownNameError) as e:
        reg.get("gren")
    # Hand-worked: difflib ranks 'green' (ratio 8/9) before 'grey' (ratio 3/4); 'red' is below the cutoff.
    assert str(e.value) == "unknown colour 'gren' (did you mean 'green', 'grey'?); known: green, grey, red"
    assert isinstance(e.value, KeyError)
    with pytest.raises(KeyError, match=r"unknown colour 'zzz'; known: green, grey, red$"):
        reg.get("zzz")


def test_duplicates_are_an_error_and_the_first_entry_stays():
    reg = make()
    with pytest.raises(ValueError, match="colour 'red' is already registered"):
        reg.add("red", 9)
    assert reg.get("red") == 1


def test_custom_error_type_and_case_folding():
    class MyError(ValueError):
        pass

    reg: Registry = Registry("data set", error=MyError, fold_case=True)
    reg.add("Market1501", "m")
    assert reg.names() == ["market1501"] and reg.get("MARKET1501") == "m" and "market1501" in reg
    with pytest.raises(MyError, match="unknown data set 'market'"):
        reg.get("market")
    with pytest.raises(ValueError, match="already registered"):
        reg.add("MARKET1501", "again")
