"""Agency names folded for search: case- and accent-insensitive, so that
"Gəncə", "GENCE" and "gence" meet, and Cyrillic names match in any case."""

import unicodedata

# Letters with no decomposition to a base letter, folded by hand.
LETTERS = str.maketrans(
    {
        "ə": "e",
        "Ə": "e",
        "ı": "i",
        "ø": "o",
        "Ø": "o",
        "ß": "ss",
        "đ": "d",
        "Đ": "d",
        "ł": "l",
        "Ł": "l",
        "ё": "е",
        "Ё": "е",
    }
)


def fold(text):
    decomposed = unicodedata.normalize("NFKD", text.translate(LETTERS))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())
