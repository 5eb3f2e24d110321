"""`make seed` loads the demonstration directory, idempotently, and its keys work."""

from services.agencies import seed
from shared.contract.digests import digest


def test_seeding_twice_gives_the_same_directory_and_keys(databases, agencies):
    url = databases["AGENCIES_DATABASE_URL"]
    first = seed.seed(url)
    assert seed.seed(url) == first
    directory = agencies("search_agencies", {"per_page": 100})
    assert directory["total"] == len(seed.AGENCIES)
    names = {agency["name"] for agency in directory["items"]}
    assert {
        "State Migration Service of the Republic of Azerbaijan",
        "IOM Azerbaijan",
        "ICMPD Azerbaijan",
        "Ministry of Health of the Republic of Azerbaijan",
    } <= names
    for name, key in first.items():
        who = agencies("authenticate", digest(key))
        assert who["agency_id"] == str(seed.agency_id(name)) and who["role"] == "agency"
    housing_in_ganja = agencies("search_agencies", {"service": "housing", "region": "AZ-GA"})
    assert housing_in_ganja["total"] >= 2
    assert agencies("search_agencies", {"q": "gence"})["total"] == 1  # Gəncə, found without its letters
