from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, TypeAdapter

EVENTS = ("invoice.created", "invoice.updated", "invoice.sent", "invoice.paid", "invoice.deleted")
CURRENCIES = ("EUR", "USD", "GBP")
STATUSES = ("draft", "sent", "paid")


def valid_unicode(value: str) -> str:
    # JSON allows lone surrogates ("\ud800") that can't be stored or sent back as UTF-8
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid unicode text") from None
    return value


def storable(value: str) -> str:
    # Postgres text cannot hold NUL: keep the rest of the text, mark where it was
    return valid_unicode(value).replace("\x00", "\ufffd")


def valid_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False, test_environment=True).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def whole_cents(value: Any) -> Any:
    # JSON has one number type: 1250 and 1250.0 are the same amount; 12.5, "1250" and true are not amounts
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float)
                                                                         and not value.is_integer()):
        raise ValueError("must be a whole number of cents")
    return int(value)


def iso_date(value: Any) -> Any:
    # JSON has no date type: only "YYYY-MM-DD" strings, never numbers read as timestamps
    if not isinstance(value, str):
        raise ValueError("must be a date as a YYYY-MM-DD string")
    return value


_HTTP_URL = TypeAdapter(HttpUrl)


def http_url(value: str) -> str:
    valid_unicode(value)
    if "\x00" in value:
        raise ValueError("a URL cannot contain NUL")
    _HTTP_URL.validate_python(value)
    if not value.lower().startswith(("http://", "https://")):
        raise ValueError("only http and https URLs are accepted")
    return value


Text = Annotated[str, AfterValidator(storable)]
Email = Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"}, examples=["ada@example.com"]),
                  AfterValidator(valid_email)]
Password = Annotated[str, Field(min_length=8, max_length=72, pattern=r"[A-Za-z][\s\S]*[0-9]|[0-9][\s\S]*[A-Za-z]",
                                examples=["correct-horse-42"], description="8-72 characters, a letter and a digit"),
                     AfterValidator(valid_unicode)]
Url = Annotated[str, Field(min_length=10, max_length=2048, json_schema_extra={"format": "uri"},
                           examples=["https://example.com/hooks/invoicely"]), AfterValidator(http_url)]
# Field before the validator: the other way round pydantic documents `ge`/`le` instead of minimum/maximum
Cents = Annotated[int, Field(ge=1, le=100_000_000_00, examples=[125000], description="In the currency's minor unit"),
                  BeforeValidator(whole_cents)]
DueDate = Annotated[date, Field(examples=["2030-01-31"]), BeforeValidator(iso_date)]
Currency = Literal["EUR", "USD", "GBP"]
Status = Literal["draft", "sent", "paid"]
Event = Literal["invoice.created", "invoice.updated", "invoice.sent", "invoice.paid", "invoice.deleted"]
T = TypeVar("T")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)  # "role" or "org_id" are dropped, never stored
    email: Email
    password: Password
    full_name: Text = Field(min_length=1, max_length=100, examples=["Ada Lovelace"])
    org_name: Text = Field(default="", max_length=100, description="Your organisation (default: your name)")


class UserOut(BaseModel):
    id: int
    org_id: int
    email: str
    full_name: str
    role: Literal["user", "admin"]
    created_at: datetime


class LoginRequest(BaseModel):
    model_config = ConfigDict(strict=True)
    email: Text = Field(min_length=1, max_length=254, examples=["ada@example.com"])
    password: str = Field(min_length=1, max_length=128, examples=["correct-horse-42"])


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Text = Field(default="default", min_length=1, max_length=100)


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown once, store it now")


class InvoiceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # org_id, status, number ... are the server's to set
    customer_name: Text = Field(min_length=1, max_length=200, examples=["Acme Ltd"])
    customer_email: Email | None = None
    description: Text = Field(default="", max_length=500, examples=["Consulting, January"])
    amount_cents: Cents
    currency: Currency = "EUR"
    due_date: DueDate | None = None


class InvoicePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_name: Text | None = Field(default=None, min_length=1, max_length=200)
    customer_email: Email | None = None
    description: Text | None = Field(default=None, max_length=500)
    amount_cents: Cents | None = None
    currency: Currency | None = None
    due_date: DueDate | None = None
    status: Status | None = Field(default=None, description="draft -> sent -> paid; a paid invoice is final")


class InvoiceOut(BaseModel):
    id: int
    org_id: int
    number: str = Field(description="INV-000001, counted per organisation")
    customer_name: str
    customer_email: str | None
    description: str
    amount_cents: int
    currency: Currency
    status: Status
    due_date: date | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    paid_at: datetime | None


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: Url
    secret: Text | None = Field(default=None, min_length=16, max_length=128,
                                description="The HMAC key deliveries are signed with; one is generated when omitted")
    events: list[Event] | None = Field(default=None, min_length=1, max_length=5,
                                       description="Events to receive (default: all)")


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[Event]
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret: shown once")


class UsageDay(BaseModel):
    day: date
    requests: int


class Usage(BaseModel):
    org_id: int
    requests_today: int
    requests_total: int
    days: list[UsageDay]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ErrorModel(BaseModel):
    detail: str
