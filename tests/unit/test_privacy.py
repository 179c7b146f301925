"""Masking what departments may not see: callers' numbers, and what the voice menu heard of them."""

from __future__ import annotations

import pytest

from callcenter.web.privacy import mask_number, mask_step


@pytest.mark.parametrize(("number", "shown"), [("0905123456", "0905•••456"), ("+84905123456", "+849•••456"),
                                                ("1234567", "•••67"), ("12", "•••"), ("", "")])
def test_numbers_keep_only_enough_to_tell_calls_apart(number: str, shown: str) -> None:
    assert mask_number(number) == shown


@pytest.mark.parametrize(("step", "shown"), [
    ("IVR_CALLBACK:number=0987654321&source=entered", "IVR_CALLBACK:number=0987•••321&source=entered"),
    ("IVR_CALLBACK:number=%2B84987654321&source=caller_id", "IVR_CALLBACK:number=+849•••321&source=caller_id"),
    ("IVR_INVALID:menu=topic&input=0987654321", "IVR_INVALID:menu=topic&input=•••"),
    ("IVR_MESSAGE:path=voicemail/2026/11/30/1700000000.1.wav", "IVR_MESSAGE:path=•••"),
    ("IVR_CASE_LOOKUP:number=100087&result=found&status=forwarded",
     "IVR_CASE_LOOKUP:number=•••87&result=found&status=forwarded"),
    ("IVR_KEY:menu=topic&digit=3", "IVR_KEY:menu=topic&digit=3"),
    ("IVR_START:line=02621022&lang=vi", "IVR_START:line=02621022&lang=vi"),
    ("IVR_EXIT:", "IVR_EXIT:"), ("IVR_EXIT", "IVR_EXIT"), ("IVR_X:odd&secret=1", "IVR_X:odd&secret=•••"),
])
def test_voice_menu_steps_keep_only_fields_that_say_nothing_of_the_caller(step: str, shown: str) -> None:
    assert mask_step(step) == shown
