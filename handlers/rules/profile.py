"""Pure rules for member accounts: names, numbers, extensions, passwords, hashes and CSV rows.

They come from the seed's admin portal: first names hold at most 23 characters and last names 30,
the extension is by default the last 4 digits of the number, and credentials are shown once and
kept only as a hash. Nothing here does I/O.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import re
import secrets
import string
from collections.abc import Iterable

import phonenumbers

from handlers.refusal import Refusal

FIRST_NAME_MAX = 23
LAST_NAME_MAX = 30
CONTRACT_MAX = 40  # member.contract_number
DEVICE_MAX = 60  # member.device_model
SERVICE_MAX = 40
SERVICES_MAX = 20
EXTENSION_DIGITS = 4
EXTENSION = re.compile(r"^\d{2,8}$")  # member.extension holds 8 characters
NO_DEVICE = "none"
NO_DEVICE_WORDS = {"none", "no", "-", "ohne", "kein", "keins", "keines"}

PASSWORD_MIN = 10
PASSWORD_CLASSES = 3
GENERATED_LENGTH = 16
ACCESS_CODE_DIGITS = 8
# No look-alikes (0/O, 1/l/I) and no quotes or separators: people copy these from a screen.
LETTERS = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "23456789"
SYMBOLS = "!#%*+-=?@_"

# Django's scrypt defaults: a chosen password or an 8-digit code must be slow to guess offline.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024

# Field names as typed (English and German) → the field they set.
FIELDS = {
    "first": "first", "vorname": "first", "last": "last", "nachname": "last",
    "phone": "phone", "number": "phone", "telefon": "phone", "nummer": "phone", "rufnummer": "phone",
    "extension": "extension", "ext": "extension", "durchwahl": "extension",
    "mobile": "mobile", "handy": "mobile", "mobil": "mobile",
    "contract": "contract", "vertrag": "contract", "vertragsnummer": "contract",
    "device": "device", "geraet": "device", "gerät": "device", "services": "services", "dienste": "services",
}
# The seed: a pending member "may be edited in profile and services", but not in configuration.
CONFIGURATION = frozenset({"phone", "extension", "device"})
OPTION = re.compile(r"^([^\W\d_]+)=(.*)$")

DEFAULT_REGION = "DE"  # numbers without a country code are read as German…
REGIONS = {"Europe/Vienna": "AT", "Europe/Zurich": "CH", "Europe/Busingen": "DE", "Europe/Vaduz": "LI",
           "Europe/Luxembourg": "LU"}  # …unless the business's time zone names another country

# Cells starting with these are formulas to Excel and LibreOffice (CSV injection); \t and \r too.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A sign before a plain number or a phone number in groups of digits is no formula: "+49 30 1234", "-2.5".
PLAIN_NUMBER = re.compile(r"[+-](\d+( \d+)*([.,]\d+)?)?")
UTF8_BOM = b"\xef\xbb\xbf"


# ---- typed options --------------------------------------------------------------------------------

def parse_options(text: str) -> tuple[list[str], dict[str, str]]:
    """'Kim Novak k@x.at phone=+43 1 234 device=Yealink T54W' → (['Kim', 'Novak', 'k@x.at'], {phone, device}).

    A value runs until the next `field=`, so numbers and models may contain spaces.
    """
    words: list[str] = []
    options: dict[str, str] = {}
    current = None
    for token in text.split():
        match = OPTION.match(token)
        if match:
            current = field_name(match.group(1))
            options[current] = match.group(2)
        elif current is None:
            words.append(token)
        else:
            options[current] = f"{options[current]} {token}".strip()
    return words, options


def field_name(typed: str) -> str:
    """The field a typed name means, or a refusal listing the known ones."""
    field = FIELDS.get(typed.lower())
    if field is None:
        raise Refusal("accounts_field_unknown", value=typed[:30], known=sorted(set(FIELDS.values())))
    return field


def clean_fields(options: dict[str, str], region: str) -> dict[str, object]:
    """Check and normalise every typed field; an empty value clears an optional one."""
    return {field: clean_field(field, value.strip(), region) for field, value in options.items()}


def clean_field(field: str, value: str, region: str) -> object:
    """One typed field, checked and normalised."""
    if field in ("first", "last"):
        return check_name(value, field)
    if field == "services":
        return parse_services(value)
    if field == "device":
        return parse_device(value)
    if not value:
        return None
    if field in ("phone", "mobile"):
        return parse_phone(value, region, field)
    if field == "extension":
        return check_extension(value)
    return check_length(value, field, CONTRACT_MAX)


# ---- names and profile fields -------------------------------------------------------------------

def split_name(name: str) -> tuple[str, str]:
    """'Anna Maria Berger' → ('Anna Maria', 'Berger'); a single word is a last name."""
    words = name.split()
    if len(words) < 2:
        return "", " ".join(words)
    return " ".join(words[:-1]), words[-1]


def check_name(value: str, field: str) -> str:
    """Collapse whitespace and enforce the seed's limits (first ≤ 23, last ≤ 30 characters)."""
    limit = FIRST_NAME_MAX if field == "first" else LAST_NAME_MAX
    cleaned = " ".join(value.split())
    if len(cleaned) > limit:
        raise Refusal("accounts_name_too_long", field=field, value=cleaned, limit=limit, length=len(cleaned))
    return cleaned


def check_length(value: str, field: str, limit: int) -> str:
    """A free-text field of at most `limit` characters."""
    cleaned = " ".join(value.split())
    if len(cleaned) > limit:
        raise Refusal("accounts_too_long", field=field, limit=limit, length=len(cleaned))
    return cleaned


def parse_device(text: str) -> str:
    """A desk phone model, or "none" for a member without a desk phone."""
    cleaned = check_length(text, "device", DEVICE_MAX)
    return NO_DEVICE if cleaned.lower() in NO_DEVICE_WORDS or not cleaned else cleaned


def parse_services(text: str) -> list[str]:
    """'Voicemail, call centre,voicemail' → ['Voicemail', 'call centre']: a set, in the order typed."""
    services: list[str] = []
    for part in text.split(","):
        name = check_length(part, "services", SERVICE_MAX)
        if name and name.lower() not in {s.lower() for s in services}:
            services.append(name)
    if len(services) > SERVICES_MAX:
        raise Refusal("accounts_too_many_services", limit=SERVICES_MAX, count=len(services))
    return services


# ---- numbers ------------------------------------------------------------------------------------

def region_for(timezone: str | None) -> str:
    """The region a number without a country code belongs to: the business's country, else Germany."""
    return REGIONS.get(timezone or "", DEFAULT_REGION)


def parse_phone(text: str, region: str, field: str = "phone") -> str:
    """A phone number in any usual notation → E.164 ('+4312345678'), or a refusal naming the value."""
    value = text.strip()
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise Refusal("accounts_phone_invalid", field=field, value=value[:40]) from None
    if not phonenumbers.is_valid_number(number):
        raise Refusal("accounts_phone_invalid", field=field, value=value[:40])
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def default_extension(e164: str | None) -> str | None:
    """The seed's default extension: the last 4 digits of the number."""
    if not e164:
        return None
    digits = re.sub(r"\D", "", e164)
    return digits[-EXTENSION_DIGITS:]


def check_extension(text: str) -> str:
    """An extension is 2 to 8 digits."""
    value = text.strip()
    if not EXTENSION.match(value):
        raise Refusal("accounts_extension_invalid", value=value[:20])
    return value


# ---- passwords and codes ------------------------------------------------------------------------

def character_classes(password: str) -> int:
    """How many of lower case, upper case, digits and other characters the password uses."""
    tests = (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    return sum(any(test(c) for c in password) for test in tests)


def password_problems(password: str, personal: Iterable[str] = ()) -> list[str]:
    """Why a chosen password is too weak (empty list: strong enough)."""
    problems = []
    if len(password) < PASSWORD_MIN:
        problems.append("too_short")
    if character_classes(password) < PASSWORD_CLASSES:
        problems.append("few_classes")
    lowered = password.lower()
    if any(len(part) >= 3 and part.lower() in lowered for part in personal_parts(personal)):
        problems.append("personal")
    if password.startswith(FORMULA_STARTS):
        problems.append("formula_start")  # a CSV export would have to change it (see csv_cell)
    if any(c.isspace() for c in password):
        problems.append("whitespace")
    return problems


def personal_parts(values: Iterable[str]) -> list[str]:
    """Names and the email's local part, split into words: a password must contain none of them."""
    parts = []
    for value in values:
        if value:
            parts += re.split(r"[\s@._+-]+", value.split("@", 1)[0] if "@" in value else value)
    return [p for p in parts if p]


def new_password(length: int = GENERATED_LENGTH) -> str:
    """A random password that passes the strength rules; it starts with a letter (CSV-safe)."""
    alphabet = LETTERS + DIGITS + SYMBOLS
    while True:
        candidate = secrets.choice(LETTERS) + "".join(secrets.choice(alphabet) for _ in range(length - 1))
        if character_classes(candidate) == 4:
            return candidate


def new_access_code(digits: int = ACCESS_CODE_DIGITS) -> str:
    """A numeric access code, e.g. for a desk phone's login.

    It never starts with 0: Excel and LibreOffice read a CSV cell of digits as a number, and "0123" would
    open as 123 (quotes do not stop them; a ="0123" formula is what the formula guard forbids).
    """
    return secrets.choice(string.digits[1:]) + "".join(secrets.choice(string.digits) for _ in range(digits - 1))


def hash_secret(secret: str) -> str:
    """scrypt with a random salt; the parameters travel with the hash so they can rise later."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                         maxmem=SCRYPT_MAXMEM, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(key)}"


def verify_secret(secret: str, digest: str) -> bool:
    """Whether `secret` is the one behind `digest` (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, key = digest.split("$")
        expected = base64.b64decode(key)
        actual = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                maxmem=SCRYPT_MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return scheme == "scrypt" and hmac.compare_digest(actual, expected)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---- CSV ----------------------------------------------------------------------------------------

# One CSV writer for every export: credentials here, member lists and error files (through imports).
# One rule for every file, in every language: ';' between cells and UTF-8 with a BOM, which German
# Excel opens by a double click and English Excel and LibreOffice read through their import dialogue.
CSV_DELIMITER = ";"


def safe_cell(value) -> str:
    """A cell a spreadsheet will not run: text starting with = @ (or tab, CR), or with + - before
    anything but a plain number or phone number, gets a leading quote."""
    text = "" if value is None else str(value)
    if not text.startswith(FORMULA_STARTS) or PLAIN_NUMBER.fullmatch(text):
        return text
    return "'" + text


def phone_cell(e164: str | None) -> str:
    """A stored number as a CSV cell: '+49 30 1234567' stays text in a spreadsheet, '+49301234567' would
    open as the number 49301234567."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL).replace("-", " ")


def csv_bytes(header: list[str], rows: Iterable[Iterable]) -> bytes:
    """A CSV file Excel opens as UTF-8 (with BOM), every text cell neutralised against formulas."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([cell if isinstance(cell, int) else safe_cell(cell) for cell in row])
    return UTF8_BOM + out.getvalue().encode("utf-8")


csv_cell = safe_cell  # the names accounts uses
csv_file = csv_bytes
