"""A restaurant menu API: customers sign up and read the menu, only staff may add to it. Nothing in the spec
says which operations are staff-only (no tags, no /admin prefix, no item GET): the create's 403 to a customer
is the only sign. `open_writes` lets any logged-in customer change and delete menu items (the flaw). Customers
order from the menu: an order may name a coupon (an optional reference that must exist), and `open_orders` lets
any customer read any order (the flaw)."""

from __future__ import annotations

import itertools
import secrets

import httpx

from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from typing import Literal


class Signup(BaseModel):
    username: str = Field(min_length=3, max_length=40)
    password: str = Field(min_length=8)


class RoleUpdate(BaseModel):
    username: str
    role: Literal["customer", "employee", "chef"]


class Item(BaseModel):
    name: str = Field(max_length=80)
    price: float = Field(ge=0)
    image_url: str | None = Field(default=None, max_length=300)


class OrderIn(BaseModel):
    delivery_address: str = Field(max_length=120)
    coupon_id: int | None = None


def menu_app(open_writes: bool = False, self_promotion: bool = False, more_items: int = 0, held: int = 0,
             with_orders: bool = False, open_orders: bool = False, fetch_images: bool = False) -> FastAPI:
    """`self_promotion`: any user may make itself an employee through PUT /users/update_role (the flaw).
    `more_items` seeds that many items after the first two; the first `held` items are in past orders, and
    deleting one answers 409 (the API protects its own data, which says nothing about who may delete).
    `fetch_images`: a new item's image is downloaded from the URL staff give (the flaw: SSRF, staff only)."""
    users: dict[str, dict] = {"chef": {"username": "chef", "password": "Chef-Pass-123", "role": "chef"}}
    tokens: dict[str, str] = {}
    items: dict[int, dict] = {1: {"id": 1, "name": "Soup", "price": 4.5}, 2: {"id": 2, "name": "Pie", "price": 3.0}}
    for number in range(3, 3 + more_items):
        items[number] = {"id": number, "name": f"Dish {number}", "price": 5.0}
    ids = itertools.count(3 + more_items)
    orders: dict[int, dict] = {}
    order_ids = itertools.count(1)
    coupons = {7: 10}
    app = FastAPI(title="menu")
    bearer = HTTPBearer(auto_error=False)

    def current(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
        user = users.get(tokens.get(creds.credentials, "")) if creds else None
        if user is None:
            raise HTTPException(401, "Not authenticated")
        return user

    def staff(user: dict = Depends(current)) -> dict:
        if user["role"] != "chef":
            raise HTTPException(403, "Only staff can change the menu")
        return user

    writer = current if open_writes else staff

    @app.post("/register", status_code=201, responses={409: {}})
    def register(body: Signup):
        if body.username in users:
            raise HTTPException(409, "taken")
        users[body.username] = {"username": body.username, "password": body.password, "role": "customer"}
        return {"username": body.username}

    @app.post("/token", responses={401: {}})
    def token(body: Signup):
        user = users.get(body.username)
        if user is None or user["password"] != body.password:
            raise HTTPException(401, "Incorrect username or password")
        value = secrets.token_urlsafe(16)
        tokens[value] = body.username
        return {"access_token": value, "token_type": "bearer"}

    @app.get("/profile", responses={401: {}})
    def profile(user: dict = Depends(current)):
        return {"username": user["username"], "role": user["role"]}

    @app.put("/users/update_role", responses={401: {}, 403: {}, 404: {}})
    def update_role(body: RoleUpdate, user: dict = Depends(current)):
        if user["role"] != "chef" and not (self_promotion and body.role != "chef"):
            raise HTTPException(403, "Only the chef gives roles")
        if body.username not in users:
            raise HTTPException(404, "no such user")
        users[body.username]["role"] = body.role
        return {"username": body.username, "role": body.role}

    @app.get("/menu")
    def menu():
        return list(items.values())

    @app.post("/menu", status_code=201, responses={401: {}, 403: {}})
    def add(body: Item, _: dict = Depends(staff)):
        if fetch_images and body.image_url:
            try:
                httpx.get(body.image_url, timeout=2.0)
            except httpx.HTTPError:
                pass
        item = {"id": next(ids), **body.model_dump()}
        items[item["id"]] = item
        return item

    @app.put("/menu/{item_id}", responses={401: {}, 403: {}, 404: {}})
    def update(item_id: int, body: Item, _: dict = Depends(writer)):
        if item_id not in items:
            raise HTTPException(404, "no such item")
        items[item_id].update(body.model_dump())
        return items[item_id]

    @app.delete("/menu/{item_id}", status_code=204, responses={401: {}, 403: {}, 404: {}, 409: {}})
    def delete(item_id: int, _: dict = Depends(writer)):
        if item_id not in items:
            raise HTTPException(404, "no such item")
        if item_id <= held:
            raise HTTPException(409, "You can not delete this menu item: it is in orders")
        del items[item_id]
        return Response(status_code=204)

    if with_orders:
        @app.post("/orders", status_code=201, responses={401: {}, 404: {}})
        def order(body: OrderIn, user: dict = Depends(current)):
            if body.coupon_id is not None and body.coupon_id not in coupons:
                raise HTTPException(404, "Coupon not found")
            made = {"id": next(order_ids), "owner": user["username"], **body.model_dump()}
            orders[made["id"]] = made
            return made

        @app.get("/orders/{order_id}", responses={401: {}, 404: {}})
        def read_order(order_id: int, user: dict = Depends(current)):
            made = orders.get(order_id)
            if made is None or not open_orders and made["owner"] != user["username"]:
                raise HTTPException(404, "Order not found")
            return made

    return app
