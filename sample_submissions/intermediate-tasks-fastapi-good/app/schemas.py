from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field


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


Text = Annotated[str, AfterValidator(valid_unicode)]
Email = Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"}, examples=["ada@example.com"]),
                  AfterValidator(valid_email)]
# 8-72 characters with at least one letter and one digit: "123456" and "password" are refused
Password = Annotated[str, Field(min_length=8, max_length=72, pattern=r"[A-Za-z][\s\S]*[0-9]|[0-9][\s\S]*[A-Za-z]",
                                examples=["correct-horse-42"], description="8-72 characters, a letter and a digit"),
                     AfterValidator(valid_unicode)]
Priority = Literal["low", "medium", "high"]
T = TypeVar("T")


class UserCreate(BaseModel):
    # unknown fields such as "role" or "is_admin" are dropped, never stored
    model_config = ConfigDict(extra="ignore", strict=True)
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


class TaskCreate(BaseModel):
    # strict: "true" is not turned into True; extra="forbid": no id or owner_id from the client
    model_config = ConfigDict(extra="forbid", strict=True)
    title: Text = Field(min_length=1, max_length=200, examples=["Write the README"])
    description: Text = Field(default="", max_length=2000)
    priority: Priority = "medium"
    done: bool = False


class TaskPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    title: Text | None = Field(default=None, min_length=1, max_length=200)
    description: Text | None = Field(default=None, max_length=2000)
    priority: Priority | None = None
    done: bool | None = None


class TaskOut(BaseModel):
    id: int
    owner_id: int
    title: str
    description: str
    priority: Priority
    done: bool
    created_at: datetime
    updated_at: datetime


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ErrorModel(BaseModel):
    detail: str
