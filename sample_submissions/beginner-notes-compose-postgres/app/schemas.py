from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

# Postgres can't store the NUL character in text columns
NO_NUL = r"^[^\x00]*$"


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    title: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    content: str = Field(default="", max_length=5000, pattern=NO_NUL)
    pinned: bool = False


class NoteOut(BaseModel):
    id: int
    title: str
    content: str
    pinned: bool
    created_at: datetime


class Message(BaseModel):
    detail: str
