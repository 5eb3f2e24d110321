"""SMS length rules: 160 GSM-7 characters, or 70 when any character is
outside GSM-7 (Cyrillic, and Azerbaijani ə, ş, ğ, ı, ...) and the text goes
as UCS-2. A text that would overflow is cut at a word, never inside one."""

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€")  # each takes two septets

GSM7_LIMIT = 160
UCS2_LIMIT = 70


def is_gsm7(text):
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text)


def length(text):
    """(units used, limit) for one SMS carrying `text`."""
    if is_gsm7(text):
        return sum(2 if ch in GSM7_EXTENDED else 1 for ch in text), GSM7_LIMIT
    return len(text.encode("utf-16-be")) // 2, UCS2_LIMIT


def fits(text):
    used, limit = length(text)
    return used <= limit


def fit(*variants):
    """The first variant that fits in one SMS; failing all, the last one cut
    after its last whole word that fits, with an ellipsis."""
    for text in variants:
        if fits(text):
            return text
    words = variants[-1].split()
    ellipsis = "..." if is_gsm7(variants[-1]) else "…"
    kept = []
    for word in words:
        if not fits(" ".join(kept + [word]) + ellipsis):
            break
        kept.append(word)
    return " ".join(kept) + ellipsis
