"""Outside working hours: the caller hears the hours, then leaves a message, asks for a callback or checks a case.

A caller who chooses nothing (silence or wrong keys through every repeat) is asked to leave a message: a
recording is the one thing we can still take from them, and it costs them nothing but the beep. A callback
whose number stays unusable after the retries falls back to a message too. Only when no message can be
recorded does the caller go on to the queue (IVR_OUTCOME=queue), so nobody is dropped by the IVR.
"""

from __future__ import annotations

from callcenter.model.contract import UNKNOWN_TOPIC, IvrEvent, IvrOutcome, IvrVar
from callcenter.model.hotline import Line
from ivr.case_status import case_status
from ivr.channel import Channel
from ivr.speech import digits, menu_option, working_hours
from ivr.steps import Call, Menu, Services, entry_problem, read_entry, report_bad_entry, run_menu, say, to_queue

MENU = "after_hours"
CALLBACK_MENU = "callback"


def after_hours(channel: Channel, call: Call, services: Services, line: Line) -> IvrOutcome:
    """The whole after-hours branch, from the hours to the caller's choice."""
    channel.user_event(IvrEvent.AFTER_HOURS, line=line.number)
    say(channel, ["after-hours", *working_hours(line.schedule, line.language)])
    rules = services.model.ivr
    keys = rules.after_hours
    menu = Menu(
        name=MENU,
        prompts=[*menu_option("ah-message", keys.message_digit), *menu_option("ah-callback", keys.callback_digit),
                 *menu_option("menu-case-status", rules.menu.case_status_digit)],
        actions={keys.message_digit: lambda: leave_message(channel, services),
                 keys.callback_digit: lambda: callback(channel, call, services),
                 rules.menu.case_status_digit: lambda: case_status(channel, services)},
        retries=keys.retries, timeout=keys.timeout)
    return run_menu(channel, menu) or leave_message(channel, services)


def leave_message(channel: Channel, services: Services) -> IvrOutcome:
    """Record a voice message. It is reported before recording starts: most callers hang up when done."""
    path = channel.message_path()
    if not path:
        return to_queue(channel, UNKNOWN_TOPIC, reason="message_unavailable")
    channel.play("message-instructions")
    channel.set_variable(IvrVar.MESSAGE, path)
    channel.set_variable(IvrVar.OUTCOME, IvrOutcome.MESSAGE)
    channel.user_event(IvrEvent.MESSAGE, path=path)
    rules = services.model.ivr.message
    if not channel.record(path, max_seconds=rules.max_seconds, silence_seconds=rules.silence_seconds):
        return to_queue(channel, UNKNOWN_TOPIC, reason="message_failed")
    channel.user_event(IvrEvent.EXIT, outcome=IvrOutcome.MESSAGE, reason="message")
    channel.play("message-thanks")
    return IvrOutcome.MESSAGE


def callback(channel: Channel, call: Call, services: Services) -> IvrOutcome:
    """Take the number to call back: keyed in, or ``#`` alone for the caller's own number when it is usable."""
    rules = services.model.ivr.callback
    own = call.caller if entry_problem(call.caller, rules) is None else ""
    for attempt in range(1, rules.retries + 2):
        entered = read_entry(channel, CALLBACK_MENU, "callback-enter", rules, attempt)
        problem = entry_problem(entered or own, rules)
        if problem is None:
            return _confirm_callback(channel, entered or own, "entered" if entered else "callerid")
        report_bad_entry(channel, CALLBACK_MENU, entered, problem, attempt)
        channel.play("no-input" if problem == "empty" else "callback-invalid")
    return leave_message(channel, services)


def _confirm_callback(channel: Channel, number: str, source: str) -> IvrOutcome:
    channel.set_variable(IvrVar.CALLBACK_NUMBER, number)
    channel.set_variable(IvrVar.OUTCOME, IvrOutcome.CALLBACK)
    channel.user_event(IvrEvent.CALLBACK, number=number, source=source)
    channel.user_event(IvrEvent.EXIT, outcome=IvrOutcome.CALLBACK, reason="callback")
    say(channel, ["callback-confirm", *digits(number), "callback-thanks"])
    return IvrOutcome.CALLBACK
