"""Generates a tiny FastAPI project with a chosen number of operations, to see how a grade's cost grows.

Each resource has the five CRUD operations (POST and GET on the collection, GET, PUT and DELETE on an
item), validated bodies, 201 on create, JSON 404s, in-memory storage; 10, 40 and 160 operations are 2,
8 and 32 resources. The project is what a tidy beginner would ship: a Dockerfile FROM python:3.12-slim
that pip installs fastapi and uvicorn (the image layer is cached after the first build), a README and a
.dockerignore. Nothing is fetched from a repository.
"""

from __future__ import annotations

from pathlib import Path

OPERATIONS_PER_RESOURCE = 5

_HEADER = '''"""A generated API of {resources} resources ({operations} operations), for benchmarking the grader."""

from itertools import count

from fastapi import FastAPI, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

app = FastAPI(title="Generated API", version="1.0.0")


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=100, examples=["first"])
    quantity: int = Field(ge=0, le=1_000_000, examples=[3])


class ItemOut(ItemIn):
    id: int


def not_found(kind):
    return HTTPException(404, f"{{kind}} not found")


NOT_FOUND = {{404: {{"description": "No such item"}}}}
'''

_RESOURCE = '''

# ---------- /{name}

_{name}: dict[int, dict] = {{}}
_{name}_ids = count(1)


@app.post("/{name}", status_code=201, response_model=ItemOut, tags=["{name}"])
def create_{name}(body: ItemIn):
    item_id = next(_{name}_ids)
    _{name}[item_id] = {{"id": item_id, **body.model_dump()}}
    return _{name}[item_id]


@app.get("/{name}", response_model=list[ItemOut], tags=["{name}"])
def list_{name}():
    return list(_{name}.values())[:100]


@app.get("/{name}/{{item_id}}", response_model=ItemOut, tags=["{name}"], responses=NOT_FOUND)
def read_{name}(item_id: int):
    if item_id not in _{name}:
        raise not_found("{name}")
    return _{name}[item_id]


@app.put("/{name}/{{item_id}}", response_model=ItemOut, tags=["{name}"], responses=NOT_FOUND)
def replace_{name}(item_id: int, body: ItemIn):
    if item_id not in _{name}:
        raise not_found("{name}")
    _{name}[item_id] = {{"id": item_id, **body.model_dump()}}
    return _{name}[item_id]


@app.delete("/{name}/{{item_id}}", status_code=204, tags=["{name}"], responses=NOT_FOUND)
def delete_{name}(item_id: int):
    if _{name}.pop(item_id, None) is None:
        raise not_found("{name}")
    return Response(status_code=204)
'''

DOCKERFILE = """FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /code
RUN pip install --no-cache-dir fastapi==0.165.0 uvicorn==0.54.0
COPY main.py .
RUN useradd --create-home --uid 1000 appuser
USER appuser
EXPOSE 8000
CMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]
"""


def resource_names(operations: int) -> list[str]:
    """`operations` must be a multiple of five: one name per resource (r01, r02, ...)."""
    if operations <= 0 or operations % OPERATIONS_PER_RESOURCE:
        raise ValueError(f"operations must be a positive multiple of {OPERATIONS_PER_RESOURCE}, not {operations}")
    return [f"r{i:02d}" for i in range(1, operations // OPERATIONS_PER_RESOURCE + 1)]


def app_source(operations: int) -> str:
    names = resource_names(operations)
    return _HEADER.format(resources=len(names), operations=operations) + "".join(
        _RESOURCE.format(name=name) for name in names)


def write_project(folder: Path, operations: int) -> Path:
    """Write the project into `folder` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.py").write_text(app_source(operations), "utf-8")
    (folder / "Dockerfile").write_text(DOCKERFILE, "utf-8")
    (folder / ".dockerignore").write_text("__pycache__\n*.pyc\n.git\n", "utf-8")
    (folder / "README.md").write_text(
        f"# Generated API\n\n{operations} CRUD operations over {operations // OPERATIONS_PER_RESOURCE} in-memory "
        "resources, generated to benchmark the grader.\n\n```bash\ndocker build -t generated . && docker run -p "
        "8000:8000 generated\n```\n\nThe OpenAPI document is served at `/openapi.json`, the docs at `/docs`.\n",
        "utf-8")
    return folder


def count_operations(spec: dict) -> int:
    """Operations in an OpenAPI document (HTTP methods under `paths`)."""
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return sum(1 for item in (spec.get("paths") or {}).values() for key in item if key in methods)
