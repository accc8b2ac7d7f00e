"""The demo data sets the tests share: one with bad rows, one clean, same seed."""

from __future__ import annotations

import pytest

from ipchange_core.demo import DemoDataSet, generate
from tests.demo.checks import END, OTHERS, REQUESTS


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> DemoDataSet:
    return generate(
        tmp_path_factory.mktemp("demo"), requests=REQUESTS, other_tickets=OTHERS, seed=11, end=END
    )


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> DemoDataSet:
    return generate(
        tmp_path_factory.mktemp("clean"),
        requests=REQUESTS,
        other_tickets=OTHERS,
        seed=11,
        end=END,
        bad_rows=False,
    )
