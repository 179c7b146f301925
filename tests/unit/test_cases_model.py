"""The case flow and case numbers, pure."""

from __future__ import annotations

import itertools

import pytest

from callcenter.model.cases import (
    TRANSITIONS,
    CaseStatus,
    TransitionError,
    case_number,
    check_transition,
    next_statuses,
    serial_of,
)
from callcenter.model.contract import Role

S = CaseStatus


@pytest.mark.parametrize(("current", "target"), list(itertools.product(CaseStatus, CaseStatus)))
@pytest.mark.parametrize("role", list(Role))
def test_every_move_is_allowed_exactly_as_the_flow_says(current: CaseStatus, target: CaseStatus,
                                                         role: Role) -> None:
    allowed = role in TRANSITIONS.get((current, target), ())
    if allowed:
        check_transition(current, target, role)
    else:
        with pytest.raises(TransitionError) as refused:
            check_transition(current, target, role)
        assert current.value in str(refused.value) and target.value in str(refused.value)


def test_the_flow_reaches_closed_from_new_and_departments_only_act_on_their_stage() -> None:
    assert next_statuses(S.NEW, Role.OPERATOR) == [S.FORWARDED]
    assert next_statuses(S.FORWARDED, Role.DEPARTMENT) == [S.IN_PROGRESS, S.RESOLVED, S.RETURNED]
    assert next_statuses(S.FORWARDED, Role.OPERATOR) == []
    assert next_statuses(S.RESOLVED, Role.SUPERVISOR) == [S.CLOSED, S.REOPENED]
    assert next_statuses(S.CLOSED, Role.DEPARTMENT) == []


def test_case_numbers_are_digits_with_a_check_digit_that_catches_typos() -> None:
    numbers = [case_number(n) for n in range(1, 3000)]
    assert numbers[0] == "10008" and len(set(numbers)) == len(numbers)  # 1000, then Damm's check digit 8
    for serial, number in enumerate(numbers[:500], 1):
        assert number.isdigit() and serial_of(number) == serial
        for i in range(len(number)):  # every single wrong digit is caught
            for digit in "0123456789":
                if digit != number[i]:
                    assert serial_of(number[:i] + digit + number[i + 1:]) is None
        for i in range(len(number) - 1):  # and every swap of two neighbours that changes the number
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2:]
            if swapped != number:
                assert serial_of(swapped) is None
    assert serial_of("") is None and serial_of("12a45") is None and serial_of("0000") is None


def test_only_ascii_digits_of_a_sane_length_name_a_case() -> None:
    assert serial_of(case_number(10**14)) == 10**14  # 16 digits: room enough
    long = "1" * 4400  # beyond the 4300 digits int() reads; one of the ten endings has a right check digit
    odd = ["²²²²²", "١٠٠٠٨", "１０００８", *(long + digit for digit in "0123456789")]
    assert [serial_of(number) for number in odd] == [None] * len(odd)
