"""An API with many owned collections (/c1 ... /cN), each a plain CRUD of the caller's own notes; the one named by
`unchecked` lets any logged-in user read, change and delete anyone's (the flaw sits past the first few);
`delay`: seconds each collection request takes (a slow API, for deadlines); `GET /admin/stats` (tagged admin) is
refused to every user but `root` (403), and `admin_open` serves it to requests with no credentials at all (the
flaw: a middleware that checks the role only when a token is sent)."""

from __future__ import annotations

import itertools
import time

from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from .todo_apps import accounts


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=80)


def many_owned_app(count: int = 5, unchecked: str | None = None, delay: float = 0.0, admin_open: bool = False) -> FastAPI:
    app = FastAPI(title="many collections")
    signed_in = accounts(app)

    def current(user: str = Depends(signed_in)) -> str:
        time.sleep(delay)
        return user
    ids = itertools.count(1)

    def collection(name: str) -> None:
        store: dict[int, dict] = {}

        def owned(item_id: int, user: str) -> dict:
            item = store.get(item_id)
            if item is None or (item["owner"] != user and name != unchecked):
                raise HTTPException(404, "Not found")
            return item

        @app.post(f"/{name}", status_code=201, operation_id=f"create_{name}", responses={401: {}})
        def create(body: NoteIn, user: str = Depends(current)):
            item = {"id": next(ids), "text": body.text, "owner": user}
            store[item["id"]] = item
            return item

        @app.get(f"/{name}", operation_id=f"list_{name}", responses={401: {}})
        def listing(user: str = Depends(current)):
            return [i for i in store.values() if i["owner"] == user]

        @app.get(f"/{name}/{{item_id}}", operation_id=f"read_{name}", responses={401: {}, 404: {}})
        def read(item_id: int, user: str = Depends(current)):
            return owned(item_id, user)

        @app.put(f"/{name}/{{item_id}}", operation_id=f"update_{name}", responses={401: {}, 404: {}})
        def update(item_id: int, body: NoteIn, user: str = Depends(current)):
            item = owned(item_id, user)
            item["text"] = body.text
            return item

        @app.delete(f"/{name}/{{item_id}}", status_code=204, operation_id=f"delete_{name}", responses={401: {}, 404: {}})
        def delete(item_id: int, user: str = Depends(current)):
            store.pop(owned(item_id, user)["id"])
            return Response(status_code=204)

    bearer = HTTPBearer(auto_error=False)

    @app.get("/admin/stats", tags=["admin"], responses={401: {}, 403: {}})
    def stats(creds: HTTPAuthorizationCredentials | None = Depends(bearer)):
        if creds is None and not admin_open:
            raise HTTPException(401, "Not authenticated")
        if creds is not None and signed_in(creds) != "root":
            raise HTTPException(403, "Admins only")
        return {"collections": count}

    for number in range(1, count + 1):
        collection(f"c{number}")
    return app
