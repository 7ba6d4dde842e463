"""Probe tests on a to-do API with no `GET /todos/{id}` (todo_apps.py): the object the grader created is found
again in the list — by the id the create answered, its Location header, or the markers it was created with —
and CRUD and ownership are judged through list + write + delete; a list that cannot show it says so."""

from __future__ import annotations

from ..conftest import kinds, make_context, run
from .project_apps import project_app
from .tarefa_apps import tarefa_app
from .todo_apps import keyed_notes_app, todo_app


def test_a_collection_without_an_item_get_is_a_resource_read_through_its_list(serve):
    ctx = make_context(serve(todo_app()))
    [resource] = ctx.api.resources
    assert (resource.collection, resource.item, resource.read) == ("/todos", "/todos/{todo_id}", None)
    assert (resource.update.label, resource.delete.label, resource.list.label) == (
        "PATCH /todos/{todo_id}", "DELETE /todos/{todo_id}", "GET /todos")


def test_crud_is_judged_through_the_list_and_passes_on_a_working_api(serve):
    outcome = run("crud.lifecycle", make_context(serve(todo_app())))
    assert outcome.status == "pass", (outcome.summary, [f.message for f in outcome.findings])
    assert "6/6 lifecycle steps" in outcome.summary
    notes = [e.note for e in outcome.evidence]
    assert "find it in the list (expect it there with the same fields)" in notes  # (the after-delete read: below)


def test_a_delete_that_keeps_the_object_fails_by_what_the_list_shows(serve):
    outcome = run("crud.lifecycle", make_context(serve(todo_app(delete_keeps=True))))
    assert outcome.status == "fail" and kinds(outcome) == {"crud_lifecycle_broken"}, outcome.summary
    assert "after DELETE, GET /todos still lists id" in outcome.findings[0].message


def test_a_create_that_answers_no_id_is_found_by_its_location_header_or_its_markers(serve):
    for answer in ("location", "message"):
        ctx = make_context(serve(todo_app(create_answer=answer)))
        outcome = run("crud.lifecycle", ctx)
        assert outcome.status == "pass", (answer, outcome.summary, [f.message for f in outcome.findings])
        assert "6/6" in outcome.summary


def test_a_list_whose_first_page_cannot_show_the_object_is_not_evaluated_rather_than_failed(serve):
    ctx = make_context(serve(todo_app(page_size=2)))
    a = ctx.identities(1)[0]
    for title in ("older one", "older two"):
        assert ctx.prober.request("POST", "/todos", json={"title": title}, headers=a.headers(ctx.api.auth)).status == 201
    outcome = run("crud.lifecycle", ctx)
    assert outcome.status == "not_evaluated", outcome.summary
    assert "has more pages" in outcome.reason and "GET /todos/{todo_id}" in outcome.reason


def test_ownership_through_the_writes_fails_when_b_changes_and_deletes_as_objects(serve):
    flawed = run("ownership.bola", make_context(serve(todo_app(shared_writes=True))))
    assert flawed.status == "fail" and kinds(flawed) == {"bola_write", "bola_delete"}, flawed.summary
    delete = next(f for f in flawed.findings if f.kind == "bola_delete")
    assert "A's list GET /todos no longer holds it" in delete.message


def test_ownership_through_the_writes_passes_when_b_is_refused_and_as_list_still_holds_the_object(serve):
    correct = run("ownership.bola", make_context(serve(todo_app())))
    assert correct.status == "pass", (correct.summary, correct.reason)
    assert "3/3 attempts refused" in correct.summary  # list, write, delete: there is no item GET to try
    assert "has no GET: B's reads are judged through the list" in correct.summary


def test_a_nested_collection_is_walked_inside_a_parent_the_grader_made_first(serve):
    ctx = make_context(serve(project_app()))
    assert {r.collection for r in ctx.api.resources} == {"/projects", "/projects/{project_id}/tasks"}
    outcome = run("crud.lifecycle", ctx)
    assert outcome.status == "pass", (outcome.summary, [f.message for f in outcome.findings])
    assert "over 2 resource(s): /projects, /projects/{project_id}/tasks" in outcome.summary
    a = ctx.identities(1)[0]
    left = ctx.prober.request("GET", "/projects", headers=a.headers(ctx.api.auth)).json()
    assert left == [], left  # the parent made for the walk is deleted again


def test_user_b_reaching_into_user_as_parent_is_an_ownership_failure(serve):
    flawed = run("ownership.bola", make_context(serve(project_app(parent_unchecked=True))))
    assert flawed.status == "fail", flawed.summary
    nested = [f for f in flawed.findings if "/tasks" in (f.operation or "")]
    assert {f.kind for f in nested} == {"bola_read", "bola_list_leak", "bola_write", "bola_delete"}, flawed.summary
    assert any("added an object to user A's /projects/" in f.message for f in nested)
    correct = run("ownership.bola", make_context(serve(project_app())))
    assert correct.status == "pass", (correct.summary, correct.reason)
    assert "2 of 2 owned collection(s) (/projects, /projects/{project_id}/tasks):" in correct.summary


def test_keys_and_webhooks_that_are_only_listed_and_revoked_are_not_data_resources():
    from portfolio_grader.discover import find_resources
    from portfolio_grader.models import Operation

    ops = [Operation(method=m, path=p) for m, p in (
        ("POST", "/api-keys"), ("GET", "/api-keys"), ("DELETE", "/api-keys/{key_id}"),
        ("POST", "/webhooks"), ("GET", "/webhooks"), ("DELETE", "/webhooks/{webhook_id}"),
        ("POST", "/notes"), ("GET", "/notes"), ("DELETE", "/notes/{note_id}"))]
    assert [r.collection for r in find_resources(ops, [])] == ["/notes"]


def test_verb_style_routes_in_portuguese_are_one_resource_with_a_login_by_usuario_and_senha(serve):
    ctx = make_context(serve(tarefa_app()))
    [resource] = ctx.api.resources
    assert (resource.collection, resource.item) == ("/tarefa/criar", "/tarefa/buscarTarefa/{id}")
    assert [op.label for op in (resource.update, resource.delete, resource.list)] == [
        "PUT /tarefa/alterar/{id}", "DELETE /tarefa/deletar/{id}", "GET /tarefa/listar"]
    assert (ctx.api.auth.identity_field, ctx.api.auth.password_field) == ("usuario", "senha")
    outcome = run("crud.lifecycle", ctx)
    assert outcome.status == "pass" and "6/6" in outcome.summary, (outcome.summary,
                                                                   [f.message for f in outcome.findings])


def test_ownership_on_verb_style_routes_is_judged_on_each_routes_own_path(serve):
    flawed = run("ownership.bola", make_context(serve(tarefa_app(sem_dono=True))))
    assert flawed.status == "fail" and kinds(flawed) == {"bola_read", "bola_write", "bola_delete"}, flawed.summary
    write = next(f for f in flawed.findings if f.kind == "bola_write")
    assert write.operation == "PUT /tarefa/alterar/{id}" and "PUT /tarefa/alterar/" in write.message
    correct = run("ownership.bola", make_context(serve(tarefa_app())))
    assert correct.status == "pass" and "4/4 attempts refused" in correct.summary, (correct.summary, correct.reason)


def test_an_update_that_takes_the_id_in_its_query_is_the_resources_update(serve):
    ctx = make_context(serve(todo_app(query_update=True)))
    [resource] = ctx.api.resources
    assert resource.update.label == "PUT /todos"
    outcome = run("crud.lifecycle", ctx)
    assert outcome.status == "pass" and "6/6" in outcome.summary, (outcome.summary, [f.message for f in outcome.findings])
    assert any(e.request.method == "PUT" and "/todos?todo_id=" in e.request.url for e in outcome.evidence)
    flawed = run("ownership.bola", make_context(serve(todo_app(query_update=True, shared_writes=True))))
    assert kinds(flawed) == {"bola_write", "bola_delete"} and "PUT /todos?todo_id=" in next(
        f.message for f in flawed.findings if f.kind == "bola_write"), flawed.summary


def test_a_create_refused_for_want_of_credentials_the_grader_cannot_get_is_not_a_crud_failure(serve):
    outcome = run("crud.lifecycle", make_context(serve(keyed_notes_app())))
    assert outcome.status == "not_evaluated", outcome.summary
    assert "POST /notes answered 403 without credentials and no test user could log in" in outcome.reason


def test_manifest_hints_name_the_apis_own_collections(serve):
    ctx = make_context(serve(tarefa_app()))
    ctx.api = ctx.api.model_copy(update={"resources": []})
    outcome = run("crud.lifecycle", ctx)
    assert outcome.status == "not_evaluated"
    assert outcome.manifest_hint.startswith("resources: [/tarefa/criar]"), outcome.manifest_hint


def test_writes_on_users_objects_that_need_no_credentials_are_auth_missing_whatever_the_spec_says(serve):
    ctx = make_context(serve(todo_app(anonymous_writes=True)))
    assert not any(op.security for op in (ctx.api.resources[0].update, ctx.api.resources[0].delete))
    outcome = run("auth.required", ctx)
    assert outcome.status == "fail", outcome.summary
    missing = [f for f in outcome.findings if f.kind == "auth_missing"]
    assert {f.operation for f in missing} == {"PATCH /todos/{todo_id}", "DELETE /todos/{todo_id}"}, outcome.summary
    assert any("deleted it" in f.message for f in missing) and any("set its `title`" in f.message for f in missing)
    correct = run("auth.required", make_context(serve(todo_app())))
    assert correct.status == "pass", (correct.summary, correct.reason)


def test_a_toggle_route_is_the_update_and_b_flipping_as_to_do_is_bola_write(serve):
    from portfolio_grader.discover import find_resources

    ctx = make_context(serve(todo_app(toggle=True)))
    (resource,) = [r for r in ctx.api.resources if r.collection == "/todos"]
    assert resource.update is not None and resource.update.label == "PATCH /todos/toggle/{todo_id}"
    assert find_resources([resource.create, resource.update], []) == []  # a toggle alone makes no resource
    crud = run("crud.lifecycle", ctx)
    assert crud.status == "pass", (crud.summary, crud.findings)
    flawed = run("ownership.bola", make_context(serve(todo_app(toggle=True, shared_writes=True))))
    writes = [f for f in flawed.findings if f.kind == "bola_write"]
    assert writes and "`done` is now True (was False)" in writes[0].message, flawed.summary
    assert run("ownership.bola", ctx).status == "pass"
