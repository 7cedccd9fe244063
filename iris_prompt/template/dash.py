"""The DASH risk identification checklist topics, in our own words, and the MARAC rule.

The recording template asks them (`questionnaire.py`, the "dash" group); the page counts the
yes answers as the form's calculated item does, and `recording.py` records the count and
whether a MARAC referral is indicated.

>>> len(DASH_ITEMS), DASH_ITEMS[0], dash_yes_count({"dash.q01": ["yes"], "dash.q02": ["no"]})
(24, 'dash.q01', 1)
"""

from collections.abc import Mapping, Sequence

__all__ = [
    "DASH_COUNT_ITEM",
    "DASH_ITEMS",
    "DASH_TOPICS",
    "MARAC_RULE",
    "MARAC_THRESHOLD",
    "dash_yes_count",
]

# The 24 DASH topics, in our own words (the SafeLives wording is theirs). Topics 1-9 come from a
# published adaptation of the CAADA-DASH checklist (2009); 10-24 are recalled, not read, and must
# be checked against the current SafeLives Dash risk checklist before go-live (docs/template.md,
# "The DASH caveat", which also cites SafeLives' MARAC referral criteria).
DASH_TOPICS: tuple[str, ...] = (
    "Was the patient injured in the most recent incident?",
    "Is the patient very frightened?",
    "Does the patient fear what the person may do next, to them or to others?",
    "Has the person cut the patient off from family or friends?",
    "Is the patient feeling depressed, or having thoughts of suicide?",
    "Has the patient separated, or tried to separate, from the person in the past year?",
    "Is there conflict over contact with children?",
    "Does the person keep texting, calling, following or turning up uninvited?",
    "Is the patient pregnant, or have they had a baby in the past 18 months?",
    "Is the abuse happening more often?",
    "Is the abuse getting worse?",
    "Does the person try to control everything the patient does, or show extreme jealousy?",
    "Has the person used a weapon or an object to hurt the patient?",
    "Has the person threatened to kill the patient or someone else?",
    "Has the person strangled, choked or suffocated the patient, or tried to drown them?",
    "Does the person do or say sexual things that frighten or hurt the patient?",
    "Is someone else threatening the patient, or is the patient afraid of someone else?",
    "Has the person hurt anyone else (children, relatives, others)?",
    "Has the person hurt or threatened to hurt an animal?",
    "Are there money problems, or does the person control the money?",
    "Does the person have problems with alcohol, drugs or mental health?",
    "Has the person threatened or attempted suicide?",
    "Has the person broken bail, an injunction or another agreement to stay away?",
    "Does the person have a criminal record, for violence or anything else?",
)
DASH_ITEMS: tuple[str, ...] = tuple(f"dash.q{n:02d}" for n in range(1, len(DASH_TOPICS) + 1))
DASH_COUNT_ITEM = "dash.yes-count"
MARAC_THRESHOLD = 14

MARAC_RULE = (
    f"Count the 'yes' answers. {MARAC_THRESHOLD} or more is visible high risk: refer to MARAC. "
    "Below that, refer on professional judgement, or where the abuse is escalating (for example "
    "three or more incidents in 12 months). Discuss with the practice safeguarding lead or the "
    "IRIS advocate educator."
)


def dash_yes_count(answers: Mapping[str, Sequence[object]]) -> int:
    """The number of DASH topics answered 'yes' (what the count item's expression computes)."""
    return sum("yes" in answers.get(link_id, ()) for link_id in DASH_ITEMS)
