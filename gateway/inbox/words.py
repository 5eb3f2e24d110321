"""The names the pages give to the contract's values (statuses, services,
moves, ...), marked for translation; pages translate them when shown."""

from gateway.inbox.i18n import N_

STATUSES = {
    "sent": N_("Waiting for an answer"),
    "accepted": N_("Accepted"),
    "declined": N_("Declined"),
    "in_progress": N_("In progress"),
    "completed": N_("Completed"),
    "cancelled": N_("Cancelled"),
}
SERVICES = {
    "housing": N_("Housing"),
    "employment": N_("Employment"),
    "health": N_("Health care"),
    "psychosocial": N_("Psychosocial support"),
    "legal": N_("Legal aid"),
    "education": N_("Education"),
    "documentation": N_("Documents"),
    "financial": N_("Financial aid"),
}
PRIORITIES = {"normal": N_("Normal"), "urgent": N_("Urgent")}
SEXES = {"female": N_("Female"), "male": N_("Male"), "other": N_("Other"), "unknown": N_("Not known")}
CONSENT_METHODS = {"written": N_("Written"), "verbal": N_("Verbal"), "electronic": N_("Electronic")}
CONTACT_LANGUAGES = {"az": N_("Azerbaijani"), "ru": N_("Russian"), "en": N_("English")}
# What each history entry's event is called.
EVENTS = {
    "created": N_("Referral sent"),
    "accept": N_("Accepted"),
    "decline": N_("Declined"),
    "start": N_("Work started"),
    "complete": N_("Completed"),
    "cancel": N_("Cancelled"),
    "overdue": N_("No answer in time"),
    "erased": N_("The returnee's data erased"),
}
# The moves' buttons, and the text a move asks for (field, label).
MOVES = {
    "accept": N_("Accept"),
    "decline": N_("Decline"),
    "start": N_("Start the work"),
    "complete": N_("Mark as completed"),
    "cancel": N_("Cancel the referral"),
    "erase": N_("Erase the returnee's data"),
}
MOVE_TEXTS = {
    "decline": ("reason", N_("Why do you decline it?")),
    "complete": ("outcome", N_("What was the outcome?")),
    "cancel": ("reason", N_("Why do you cancel it?")),
    "erase": ("reason", N_("Why are the data erased? (This text is not kept either.)")),
}
# A move's answer, said once the page is shown again.
MOVE_DONE = {
    "accept": N_("You accepted referral %(reference)s."),
    "decline": N_("You declined referral %(reference)s."),
    "start": N_("You started the work on referral %(reference)s."),
    "complete": N_("You completed referral %(reference)s."),
    "cancel": N_("You cancelled referral %(reference)s."),
    "erase": N_("You erased the returnee's data in referral %(reference)s."),
}
