"""A to-do API in Portuguese with verb-style routes, as learner projects in Brazil write them:
`POST /usuarios/cadastrar` and `POST /usuarios/entrar` with `usuario` + `senha`, then `POST /tarefa/criar`,
`GET /tarefa/listar`, `GET /tarefa/buscarTarefa/{id}`, `PUT /tarefa/alterar/{id}`, `DELETE /tarefa/deletar/{id}`.
`sem_dono`: any logged-in user reads, changes and deletes anyone's task by id (the flaw)."""

from __future__ import annotations

import itertools
import secrets

from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field


class Cadastro(BaseModel):
    usuario: str = Field(min_length=3, max_length=40)
    senha: str = Field(min_length=8)


class TarefaIn(BaseModel):
    titulo: str = Field(min_length=1, max_length=80)
    concluida: bool = False


def tarefa_app(sem_dono: bool = False) -> FastAPI:
    usuarios: dict[str, str] = {}
    tokens: dict[str, str] = {}
    tarefas: dict[int, dict] = {}
    ids = itertools.count(1)
    app = FastAPI(title="tarefas")
    bearer = HTTPBearer(auto_error=False)

    def atual(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        nome = tokens.get(creds.credentials, "") if creds else ""
        if nome not in usuarios:
            raise HTTPException(401, "Não autenticado")
        return nome

    def da_pessoa(tarefa_id: int, nome: str) -> dict:
        tarefa = tarefas.get(tarefa_id)
        if tarefa is None or (tarefa["dono"] != nome and not sem_dono):
            raise HTTPException(404, "Tarefa não encontrada")
        return tarefa

    def publica(tarefa: dict) -> dict:
        return {k: v for k, v in tarefa.items() if k != "dono"}

    @app.post("/usuarios/cadastrar", status_code=201, responses={409: {}})
    def cadastrar(corpo: Cadastro):
        if corpo.usuario in usuarios:
            raise HTTPException(409, "Usuário já existe")
        usuarios[corpo.usuario] = corpo.senha
        return {"usuario": corpo.usuario}

    @app.post("/usuarios/entrar", responses={401: {}})
    def entrar(corpo: Cadastro):
        if usuarios.get(corpo.usuario) != corpo.senha:
            raise HTTPException(401, "Usuário ou senha inválidos")
        valor = secrets.token_urlsafe(16)
        tokens[valor] = corpo.usuario
        return {"access_token": valor, "token_type": "bearer"}

    @app.post("/tarefa/criar", status_code=201, responses={401: {}})
    def criar(corpo: TarefaIn, nome: str = Depends(atual)):
        tarefa = {"id": next(ids), **corpo.model_dump(), "dono": nome}
        tarefas[tarefa["id"]] = tarefa
        return publica(tarefa)

    @app.get("/tarefa/listar", responses={401: {}})
    def listar(nome: str = Depends(atual)):
        return [publica(t) for t in tarefas.values() if t["dono"] == nome]

    @app.get("/tarefa/buscarTarefa/{id}", responses={401: {}, 404: {}})
    def buscar(id: int, nome: str = Depends(atual)):
        return publica(da_pessoa(id, nome))

    @app.put("/tarefa/alterar/{id}", responses={401: {}, 404: {}})
    def alterar(id: int, corpo: TarefaIn, nome: str = Depends(atual)):
        tarefa = da_pessoa(id, nome)
        tarefa.update(corpo.model_dump())
        return publica(tarefa)

    @app.delete("/tarefa/deletar/{id}", status_code=204, responses={401: {}, 404: {}})
    def deletar(id: int, nome: str = Depends(atual)):
        da_pessoa(id, nome)
        tarefas.pop(id)
        return Response(status_code=204)

    return app
