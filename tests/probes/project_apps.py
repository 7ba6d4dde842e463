"""A project-board API with a nested collection: each user's projects, and tasks under a project
(`/projects/{project_id}/tasks`, `/projects/{project_id}/tasks/{task_id}`). `parent_unchecked`: the task routes
check only that the project exists, not whose it is (the flaw: B reads, lists, adds to and changes A's tasks)."""

from __future__ import annotations

import itertools

from fastapi import Depends, FastAPI, HTTPException, Response
from pydantic import BaseModel, Field

from .todo_apps import accounts


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)


class TaskIn(BaseModel):
    title: str = Field(min_length=1, max_length=80)
    done: bool = False


def project_app(parent_unchecked: bool = False) -> FastAPI:
    projects: dict[int, dict] = {}
    tasks: dict[int, dict] = {}
    ids = itertools.count(1)
    app = FastAPI(title="projects")
    current = accounts(app)

    def project_of(project_id: int, user: str) -> dict:
        project = projects.get(project_id)
        if project is None or (project["owner"] != user and not parent_unchecked):
            raise HTTPException(404, "no such project")
        return project

    def task_of(project_id: int, task_id: int, user: str) -> dict:
        project_of(project_id, user)
        task = tasks.get(task_id)
        if task is None or task["project_id"] != project_id:
            raise HTTPException(404, "no such task")
        return task

    @app.post("/projects", status_code=201, responses={401: {}})
    def create_project(body: ProjectIn, user: str = Depends(current)):
        project = {"id": next(ids), **body.model_dump(), "owner": user}
        projects[project["id"]] = project
        return project

    @app.get("/projects", responses={401: {}})
    def list_projects(user: str = Depends(current)):
        return [p for p in projects.values() if p["owner"] == user]

    @app.get("/projects/{project_id}", responses={401: {}, 404: {}})
    def read_project(project_id: int, user: str = Depends(current)):
        return project_of(project_id, user)

    @app.put("/projects/{project_id}", responses={401: {}, 404: {}})
    def update_project(project_id: int, body: ProjectIn, user: str = Depends(current)):
        project = project_of(project_id, user)
        project.update(body.model_dump())
        return project

    @app.delete("/projects/{project_id}", status_code=204, responses={401: {}, 404: {}})
    def delete_project(project_id: int, user: str = Depends(current)):
        project_of(project_id, user)
        projects.pop(project_id)
        for task_id in [t for t, task in tasks.items() if task["project_id"] == project_id]:
            tasks.pop(task_id)
        return Response(status_code=204)

    @app.post("/projects/{project_id}/tasks", status_code=201, responses={401: {}, 404: {}})
    def create_task(project_id: int, body: TaskIn, user: str = Depends(current)):
        project_of(project_id, user)
        task = {"id": next(ids), "project_id": project_id, **body.model_dump()}
        tasks[task["id"]] = task
        return task

    @app.get("/projects/{project_id}/tasks", responses={401: {}, 404: {}})
    def list_tasks(project_id: int, user: str = Depends(current)):
        project_of(project_id, user)
        return [t for t in tasks.values() if t["project_id"] == project_id]

    @app.get("/projects/{project_id}/tasks/{task_id}", responses={401: {}, 404: {}})
    def read_task(project_id: int, task_id: int, user: str = Depends(current)):
        return task_of(project_id, task_id, user)

    @app.put("/projects/{project_id}/tasks/{task_id}", responses={401: {}, 404: {}})
    def update_task(project_id: int, task_id: int, body: TaskIn, user: str = Depends(current)):
        task = task_of(project_id, task_id, user)
        task.update(body.model_dump())
        return task

    @app.delete("/projects/{project_id}/tasks/{task_id}", status_code=204, responses={401: {}, 404: {}})
    def delete_task(project_id: int, task_id: int, user: str = Depends(current)):
        task_of(project_id, task_id, user)
        tasks.pop(task_id)
        return Response(status_code=204)

    return app
