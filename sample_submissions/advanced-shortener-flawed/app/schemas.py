from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter


def valid_unicode(value: str) -> str:
    # JSON allows lone surrogates ("\ud800") that can't be stored or sent back as UTF-8
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid unicode text") from None
    return value


def valid_email(value: str) -> str:
    # like pydantic's EmailStr, but also accepts the reserved .test domain (used by test tools)
    try:
        return validate_email(value, check_deliverability=False, test_environment=True).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


_HTTP_URL = TypeAdapter(HttpUrl)


def http_url(value: str) -> str:
    # validated as an http(s) URL, stored exactly as given (what the client sent is what Location says)
    valid_unicode(value)
    _HTTP_URL.validate_python(value)
    if not value.lower().startswith(("http://", "https://")):
        raise ValueError("only http and https URLs can be shortened")
    return value


Text = Annotated[str, AfterValidator(valid_unicode)]
Email = Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"}, examples=["ada@example.com"]),
                  AfterValidator(valid_email)]
Password = Annotated[str, Field(min_length=8, max_length=72, pattern=r"[A-Za-z][\s\S]*[0-9]|[0-9][\s\S]*[A-Za-z]",
                                examples=["correct-horse-42"], description="8-72 characters, a letter and a digit"),
                     AfterValidator(valid_unicode)]
LongUrl = Annotated[str, Field(min_length=10, max_length=2048, json_schema_extra={"format": "uri"},
                               examples=["https://example.com/a/very/long/path?with=query"]),
                    AfterValidator(http_url)]
T = TypeVar("T")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)  # "role" or "is_admin" are dropped, never stored
    email: Email
    password: Password
    full_name: Text = Field(min_length=1, max_length=100, examples=["Ada Lovelace"])


class UserOut(BaseModel):
    id: int
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
    expires_in: int = Field(description="Seconds until the token expires")


class LinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # no code, owner_id or clicks from the client
    url: LongUrl
    title: Text = Field(default="", max_length=200)


class LinkPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: LongUrl | None = None
    title: Text | None = Field(default=None, max_length=200)


class LinkOut(BaseModel):
    id: int
    code: str
    short_url: str
    url: str
    title: str
    owner_id: int
    created_at: datetime
    updated_at: datetime


class LinkStats(BaseModel):
    link_id: int
    code: str
    clicks: int = Field(description="Redirects counted so far (updated by the background worker within seconds)")
    last_clicked_at: datetime | None


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ErrorModel(BaseModel):
    detail: str
