"""bench/run.py: the version a run measures, from an alias or a version URI."""

from __future__ import annotations

import pytest

from bench.run import registered_version


class Registry:
    def get_model_version_by_alias(self, name: str, alias: str) -> object:
        assert (name, alias) == ("titanic", "champion")
        return type("Version", (), {"version": 7})()


def test_an_alias_is_read_once_and_a_version_uri_taken_as_it_is():
    assert registered_version("models:/titanic@champion", Registry()) == ("titanic", "7")
    assert registered_version("models:/titanic/3", Registry()) == ("titanic", "3")


@pytest.mark.parametrize("uri", ["models:/titanic", "models:/titanic/latest", "runs:/abc/model"])
def test_a_uri_naming_no_version_stops_the_run(uri: str):
    with pytest.raises(SystemExit):
        registered_version(uri, Registry())
