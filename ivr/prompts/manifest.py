"""Every prompt the IVR can play: its name and what it says in Vietnamese and English.

Fixed prompts are listed here; line greetings and topic labels come from the telephony model, so a new topic
or line needs no code, only ``make prompts``. Names are file names: a studio recording ``vi/<name>.wav`` replaces
the generated one.
"""

from __future__ import annotations

from callcenter.model.hotline import HotlineModel
from callcenter.model.ivr import Texts
from callcenter.model.schedule import WEEKDAYS

NUMBERS = range(60)  # num-<n>: digits of case and phone numbers, hours and minutes


def _t(vi: str, en: str) -> Texts:
    return Texts(vi=vi, en=en)


FIXED: dict[str, Texts] = {
    "menu-intro": _t("Xin quý vị chọn lĩnh vực cần phản ánh.", "Please choose the topic of your call."),
    "press": _t("bấm phím", "press"),
    "menu-case-status": _t("Để nghe tình trạng hồ sơ đã phản ánh,", "To hear the status of a case,"),
    "menu-repeat": _t("Để nghe lại,", "To hear these options again,"),
    "no-input": _t("Quý vị chưa bấm phím nào.", "We did not receive your choice."),
    "invalid": _t("Lựa chọn không hợp lệ.", "Sorry, that is not a valid choice."),
    "to-operator": _t("Xin quý vị giữ máy, cuộc gọi đang được chuyển đến điện thoại viên.",
                      "Please hold, we are connecting you to an operator."),
    "after-hours": _t("Hiện đang ngoài giờ làm việc.", "We are closed at the moment."),
    "hours-intro": _t("Giờ làm việc:", "Our working hours are:"),
    "through": _t("đến", "to"),
    "from": _t("từ", "from"),
    "until": _t("đến", "until"),
    "and": _t("và", "and"),
    "all-day": _t("cả ngày", "all day"),
    "hour": _t("giờ", "o'clock"),
    "oh": _t("linh", "oh"),
    "am": _t("sáng", "a m"),
    "pm": _t("chiều", "p m"),
    "holidays-closed": _t("Nghỉ các ngày lễ, Tết.", "We are closed on public holidays."),
    "ah-message": _t("Để để lại lời nhắn,", "To leave a message,"),
    "ah-callback": _t("Để yêu cầu chúng tôi gọi lại,", "To ask us to call you back,"),
    "message-instructions": _t(
        "Sau tiếng bíp, xin quý vị để lại họ tên, số điện thoại và nội dung phản ánh. Bấm phím thăng khi kết thúc.",
        "After the tone, please leave your name, phone number and message. Press the hash key when you have "
        "finished."),
    "message-thanks": _t("Lời nhắn của quý vị đã được ghi lại. Xin cảm ơn và hẹn gặp lại.",
                         "Thank you, your message has been recorded. Goodbye."),
    "callback-enter": _t(
        "Xin nhập số điện thoại để chúng tôi gọi lại, rồi bấm phím thăng. Để dùng số đang gọi, chỉ cần bấm phím thăng.",
        "Please enter the number we should call back, then press hash. To use the number you are calling from, "
        "just press hash."),
    "callback-invalid": _t("Số điện thoại không hợp lệ.", "That phone number is not valid."),
    "callback-confirm": _t("Chúng tôi sẽ gọi lại cho quý vị theo số", "We will call you back on"),
    "callback-thanks": _t("trong giờ làm việc. Xin cảm ơn và hẹn gặp lại.", "during working hours. Goodbye."),
    "case-enter": _t("Xin nhập số hồ sơ, rồi bấm phím thăng.", "Please enter your case number, then press hash."),
    "case-invalid": _t("Số hồ sơ không hợp lệ.", "That case number is not valid."),
    "case-number": _t("Hồ sơ số", "Case number"),
    "case-not-found": _t("không tìm thấy.", "was not found."),
    "case-status-is": _t("có tình trạng:", "has the status:"),
    "case-unavailable": _t("Hiện chưa tra cứu được hồ sơ, xin quý vị thử lại sau.",
                           "Case lookup is not available right now, please try again later."),
    "case-status-received": _t("đã tiếp nhận.", "received."),
    "case-status-in_progress": _t("đang xử lý.", "in progress."),
    "case-status-forwarded": _t("đã chuyển đến cơ quan chức năng.", "forwarded to the responsible department."),
    "case-status-resolved": _t("đã xử lý xong.", "resolved."),
    "case-status-closed": _t("đã kết thúc.", "closed."),
    "case-status-rejected": _t("không được tiếp nhận.", "not accepted."),
    "case-status-other": _t("đang được cập nhật.", "being updated."),
    "case-updated": _t("Cập nhật lần cuối ngày", "Last updated on day"),
    "month": _t("tháng", "month"),
}

DAYS: dict[str, Texts] = {
    f"day-{day}": _t(vi, en) for day, vi, en in zip(
        WEEKDAYS, ("thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật"),
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
}

def number(value: int) -> str:
    """The prompt that speaks ``value`` (0-59)."""
    if value not in NUMBERS:
        raise ValueError(f"no prompt for the number {value}")
    return f"num-{value}"


def manifest(model: HotlineModel) -> dict[str, Texts]:
    """Every prompt name with its texts: fixed, numbers, weekdays, and the configured greetings and topics."""
    prompts = dict(FIXED)
    prompts.update({number(n): _t(str(n), str(n)) for n in NUMBERS})
    prompts.update(DAYS)
    prompts.update({topic.prompt: topic.label for topic in model.topics})
    prompts.update({line.greeting_prompt: line.greeting for line in model.lines.values()})
    return prompts
