"""The people of the personalization tests: a marketer who authors and submits, an approver who decides."""

import pytest

from tests.personalization.helpers import make_people


@pytest.fixture
def people(db, django_user_model):
    """(marketer, approver)."""
    return make_people(django_user_model)


@pytest.fixture
def marketer(people):
    return people[0]


@pytest.fixture
def approver(people):
    return people[1]
