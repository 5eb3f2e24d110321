"""SMS length rules: 160 GSM-7 characters (those of the extension table
count two), or 70 when any character is outside GSM-7 (Cyrillic, and
Azerbaijani ə, ş, ğ, ı, ç, İ, ...; ö, ü, Ç, Ö, Ü are GSM-7) and the text
goes as UCS-2. A text that would overflow is cut after a whole word, never
inside one."""

# GSM 03.38 basic character set: 128 code points, less the escape to the extension table.
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("\f^{}\\[~]|€")  # each takes two septets: escape + character

GSM7_LIMIT = 160
UCS2_LIMIT = 70
TRAILING_PUNCTUATION = ",;:-–—("  # not left dangling before an ellipsis


def is_gsm7(text):
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text)


def length(text):
    """(units used, limit) for one SMS carrying `text`: septets of GSM-7,
    or UTF-16 code units of UCS-2."""
    if is_gsm7(text):
        return sum(2 if ch in GSM7_EXTENDED else 1 for ch in text), GSM7_LIMIT
    return len(text.encode("utf-16-be")) // 2, UCS2_LIMIT


def fits(text):
    used, limit = length(text)
    return used <= limit


def fit(*variants):
    """The first variant that fits in one SMS; failing all, the last one cut
    after its last whole word that fits, with an ellipsis ("..." in GSM-7
    text, "…" otherwise)."""
    for text in variants:
        if fits(text):
            return text
    ellipsis = "..." if is_gsm7(variants[-1]) else "…"
    cut = ""
    words = variants[-1].split()
    for count in range(1, len(words) + 1):
        candidate = " ".join(words[:count]).rstrip(TRAILING_PUNCTUATION + " ") + ellipsis
        if not fits(candidate):
            break
        cut = candidate
    return cut or ellipsis
