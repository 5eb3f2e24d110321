"""`make seed`: a demonstration directory of the bodies that work on
returnees' reintegration in Azerbaijan, and an agency key for two of them.

Idempotent: each agency has a fixed id (made from its name), existing ones
are left as they are, and the two demonstration keys are derived from the
agency ids, so every run prints the same keys. They are for trying the API on
a demonstration network only: anyone with this code can derive them, so never
seed a directory that holds real referrals.
"""

import hashlib
import uuid

from sqlalchemy.orm import sessionmaker

from services.agencies import directory
from shared import config
from shared.storage import migrate
from shared.storage.db import make_engine

SEED_NAMESPACE = uuid.UUID("3f6c1c9e-5a8e-4d7e-9d0b-6a1c2b7e4f10")
ALL_REGIONS = ["AZ-BA", "AZ-GA", "AZ-SM", "AZ-LA", "AZ-MI", "AZ-SA", "AZ-NX", "AZ-SR"]


def contact(name, user, language, channels=("email",), phone=None):
    return {
        "name": name,
        "email": f"{user}@example.org",
        "phone": phone,
        "language": language,
        "channels": list(channels),
    }


AGENCIES = [
    {
        "name": "State Migration Service of the Republic of Azerbaijan",
        "kind": "government",
        "services": ["documentation", "legal"],
        "regions": ALL_REGIONS,
        "languages": ["az", "ru", "en"],
        "contacts": [
            contact("Rashad Aliyev", "readmission.sms", "az", ("email", "sms"), "+994502001122"),
            contact("Olga Huseynova", "returns.sms", "ru"),
        ],
    },
    {
        "name": "Ministry of Labour and Social Protection of Population",
        "kind": "government",
        "services": ["employment", "financial", "psychosocial"],
        "regions": ALL_REGIONS,
        "languages": ["az", "ru"],
        "contacts": [
            contact("Gunel Mammadova", "employment.labour", "az", ("email", "sms"), "+994552003344")
        ],
    },
    {
        "name": "Ministry of Health of the Republic of Azerbaijan",
        "kind": "government",
        "services": ["health", "psychosocial"],
        "regions": ALL_REGIONS,
        "languages": ["az", "ru"],
        "contacts": [contact("Dr. Elnur Hasanov", "returnee.health", "az")],
    },
    {
        "name": "Ministry of Science and Education of the Republic of Azerbaijan",
        "kind": "government",
        "services": ["education"],
        "regions": ALL_REGIONS,
        "languages": ["az", "ru", "en"],
        "contacts": [contact("Sevinj Guliyeva", "schooling.education", "az")],
    },
    {
        "name": "IOM Azerbaijan",
        "kind": "international",
        "services": ["housing", "employment", "financial", "psychosocial", "health", "documentation"],
        "regions": ["AZ-BA", "AZ-GA", "AZ-SM", "AZ-LA"],
        "languages": ["az", "ru", "en"],
        "contacts": [
            contact("Leyla Ismayilova", "reintegration.iom", "en", ("email", "sms"), "+994503004455"),
            contact("Farid Karimov", "avrr.iom", "az"),
        ],
    },
    {
        "name": "ICMPD Azerbaijan",
        "kind": "international",
        "services": ["legal", "documentation", "employment"],
        "regions": ["AZ-BA", "AZ-GA"],
        "languages": ["en", "ru", "az"],
        "contacts": [contact("Anna Keller", "migration-partnership.icmpd", "en")],
    },
    {
        "name": "Azerbaijan Red Crescent Society",
        "kind": "ngo",
        "services": ["health", "psychosocial", "housing", "financial"],
        "regions": ALL_REGIONS,
        "languages": ["az", "ru"],
        "contacts": [
            contact("Aynur Babayeva", "returnees.redcrescent", "az", ("email", "sms"), "+994505006677")
        ],
    },
    {
        "name": "Azerbaijan Migration Centre",
        "kind": "ngo",
        "services": ["legal", "documentation", "psychosocial"],
        "regions": ["AZ-BA", "AZ-SM"],
        "languages": ["az", "ru", "en"],
        "contacts": [contact("Vugar Jafarov", "casework.migrationcentre", "ru")],
    },
    {
        "name": "Legal Education Society",
        "kind": "ngo",
        "services": ["legal"],
        "regions": ["AZ-BA", "AZ-GA", "AZ-LA"],
        "languages": ["az", "en"],
        "contacts": [contact("Nigar Rzayeva", "legal-aid.les", "az")],
    },
    {
        "name": "Gəncə Şəhər İcra Hakimiyyəti — Sosial Xidmətlər",
        "kind": "municipality",
        "services": ["housing", "education"],
        "regions": ["AZ-GA"],
        "languages": ["az", "ru"],
        "contacts": [contact("Kamran Abbasov", "social.ganja", "az")],
    },
]
DEMO_KEYS_FOR = ("State Migration Service of the Republic of Azerbaijan", "IOM Azerbaijan")


def agency_id(name):
    return uuid.uuid5(SEED_NAMESPACE, name)


def demo_key(agency_uuid):
    return "rnk_demo_" + hashlib.sha256(f"demo-key:{agency_uuid}".encode()).hexdigest()[:32]


def seed(url):
    migrate.upgrade("agencies", url)
    engine = make_engine(url)
    keys = {}
    try:
        with sessionmaker(engine).begin() as session:
            for body in AGENCIES:
                directory.ensure(session, agency_id(body["name"]), body)
            for name in DEMO_KEYS_FOR:
                keys[name] = demo_key(agency_id(name))
                directory.ensure_key(session, agency_id(name), keys[name], "agency")
    finally:
        engine.dispose()
    return keys


def main():
    keys = seed(config.load()["AGENCIES_DATABASE_URL"])
    print(f"The directory holds the {len(AGENCIES)} demonstration agencies. Agency keys to try the API with:")
    for name, key in keys.items():
        print(f"  {name} ({agency_id(name)}):\n    Authorization: Bearer {key}")


if __name__ == "__main__":
    main()
