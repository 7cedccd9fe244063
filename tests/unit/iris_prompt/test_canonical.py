"""Every canonical URL the project mints starts with the one base in iris_prompt.urls."""

from iris_prompt.codesets.files import default_codesets_dir, load_codesets
from iris_prompt.codesets.valueset import codeset_to_valueset
from iris_prompt.template.questionnaire import ANSWER_SYSTEM, QUESTIONNAIRE_URL, questionnaire
from iris_prompt.urls import CANONICAL_BASE


def test_the_base_is_reserved_until_a_domain_is_registered() -> None:
    # .invalid never resolves (RFC 2606): nothing can pass for a published identifier by accident.
    assert CANONICAL_BASE == "https://iris-prompt.invalid/fhir"


def test_questionnaire_answers_and_valuesets_share_the_base() -> None:
    urls = [QUESTIONNAIRE_URL, ANSWER_SYSTEM, questionnaire()["url"]]
    for codeset in load_codesets(default_codesets_dir()):
        valueset = codeset_to_valueset(codeset)
        urls.append(valueset["url"])
        urls += [extension["url"] for extension in valueset["extension"]]
    assert all(url.startswith(CANONICAL_BASE + "/") for url in urls), urls
