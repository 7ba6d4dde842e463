"""A resource the manifest spells out: a to-do API whose items live at `/task/{task_id}` beside the `/tasks`
collection (singular, a shape discovery does not pair) is invisible to CRUD until `resources:` declares it; then
CRUD runs on it and judges it. A declaration naming an operation the spec lacks is left out with a note."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from portfolio_grader.discover import declared_resources
from portfolio_grader.manifest import read_manifest
from portfolio_grader.models import RepoFacts

from ..conftest import make_context, run


class TaskIn(BaseModel):
    title: str
    done: bool = False


def singular_item_app(*, lost_update: bool = False) -> FastAPI:
    app = FastAPI(title="Tasks")
    tasks: dict[int, dict] = {}

    @app.post("/tasks", status_code=201)
    def create(body: TaskIn):
        task = {"id": len(tasks) + 1, **body.model_dump()}
        tasks[task["id"]] = task
        return task

    @app.get("/tasks")
    def all_tasks():
        return list(tasks.values())

    @app.get("/task/{task_id}")
    def one(task_id: int):
        if task_id not in tasks:
            raise HTTPException(404, "no such task")
        return tasks[task_id]

    @app.put("/task/{task_id}")
    def replace(task_id: int, body: TaskIn):
        one(task_id)
        if not lost_update:
            tasks[task_id] = {"id": task_id, **body.model_dump()}
        return {"id": task_id, **body.model_dump()}

    @app.delete("/task/{task_id}", status_code=204)
    def remove(task_id: int):
        one(task_id)
        del tasks[task_id]

    return app


def manifest(text: str):
    found, problems = read_manifest(text, "portfolio-grader.yaml")
    assert not problems, problems
    return RepoFacts(manifest=found)


DECLARED = 'resources:\n  - {collection: /tasks, item: "/task/{task_id}"}\n'


def test_undeclared_the_singular_item_path_is_not_a_resource(serve):
    ctx = make_context(serve(singular_item_app()))
    assert ctx.api.resources == []
    assert run("crud.lifecycle", ctx).status == "not_evaluated"


def test_a_declared_resource_is_probed_and_judged(serve):
    ctx = make_context(serve(singular_item_app()), facts=manifest(DECLARED))
    [resource] = ctx.api.resources
    assert (resource.item, resource.id_param, resource.read.label, resource.update.label) == (
        "/task/{task_id}", "task_id", "GET /task/{task_id}", "PUT /task/{task_id}")
    outcome = run("crud.lifecycle", ctx)
    assert outcome.status == "pass", outcome
    flawed = make_context(serve(singular_item_app(lost_update=True)), facts=manifest(DECLARED))
    assert run("crud.lifecycle", flawed).status == "fail"


def test_a_declaration_naming_an_operation_the_spec_lacks_is_left_out_with_a_note(serve):
    text = 'resources:\n  - {collection: /tasks, item: "/task/{task_id}", update: "PATCH /task/{task_id}"}\n'
    ctx = make_context(serve(singular_item_app()), facts=manifest(text))
    assert ctx.api.resources == []
    [note] = ctx.api.notes
    assert "resource /tasks was left out" in note and "update: PATCH /task/{task_id}" in note


def test_declared_resources_read_from_yaml_keep_collections_as_strings():
    facts = manifest('resources:\n  - /books\n  - {collection: /tasks, item: "/task/{id}", id: task_id}\n')
    assert facts.manifest.resources == ["/books", "/tasks"]
    assert facts.manifest.declared_resources[0].id == "task_id"
    problems = read_manifest('resources:\n  - {collection: /tasks}\n', "m.yaml")[1]
    assert problems == ["m.yaml: `resources` (line 1) was ignored: 0.item: Field required"]
    assert declared_resources([], facts.manifest.declared_resources)[0] == []


def test_the_readme_manifest_example_reads_without_a_problem():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [example] = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "resources:" in b
                 and "setup:" in b]
    found, problems = read_manifest(example, "portfolio-grader.yaml")
    assert problems == [] and found.declared_resources[0].item == "/api/v1/task/{task_id}", problems
