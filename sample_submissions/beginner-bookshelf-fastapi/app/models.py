from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def whole_number(value):
    # JSON has no separate integer type: 1965.0 is a valid integer in the OpenAPI
    # schema, so accept it. Strings like "1965" are still rejected (strict mode).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Year = Annotated[int, Field(ge=0, le=2100, examples=[1965]), BeforeValidator(whole_number)]


class BookBase(BaseModel):
    title: str = Field(min_length=1, max_length=200, examples=["Dune"])
    author: str = Field(min_length=1, max_length=100, examples=["Frank Herbert"])
    year: Year
    read: bool = False


# strict: don't silently turn "1965" into 1965 or 1 into True
class BookCreate(BookBase):
    model_config = ConfigDict(extra="forbid", strict=True)


class BookUpdate(BookBase):
    """PUT replaces the whole book, so every field is required like on create."""

    model_config = ConfigDict(extra="forbid", strict=True)


class BookPatch(BaseModel):
    """PATCH only changes the fields that are sent."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: str | None = Field(default=None, min_length=1, max_length=200)
    author: str | None = Field(default=None, min_length=1, max_length=100)
    year: Year | None = None
    read: bool | None = None


class Book(BookBase):
    id: int


class ErrorModel(BaseModel):
    detail: str
