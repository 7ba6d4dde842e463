from datetime import date, datetime
from typing import Annotated, Generic, Literal, TypeVar

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter

EVENTS = ("link.created", "link.updated", "link.deleted")


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
                           examples=["https://example.com/a/very/long/path"]), AfterValidator(http_url)]
Event = Literal["link.created", "link.updated", "link.deleted"]
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


class LinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: Url
    title: Text = Field(default="", max_length=200)


class LinkPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: Url | None = None
    title: Text | None = Field(default=None, max_length=200)


class LinkOut(BaseModel):
    id: int
    org_id: int
    code: str
    short_url: str
    url: str
    title: str
    created_at: datetime
    updated_at: datetime


class LinkStats(BaseModel):
    link_id: int
    code: str
    clicks: int = Field(description="Redirects counted so far (updated by a background worker within a second)")
    last_clicked_at: datetime | None


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: Url
    secret: Text | None = Field(default=None, min_length=16, max_length=128,
                                description="The HMAC key deliveries are signed with; one is generated when omitted")
    events: list[Event] | None = Field(default=None, min_length=1, max_length=3,
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
