import pytest

from app import app, db


@pytest.fixture()
def client(tmp_path):
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'test.db'}")
    with app.app_context():
        db.create_all()
    yield app.test_client()
    with app.app_context():
        db.drop_all()


def test_create_then_read(client):
    created = client.post("/recipes", json={"title": "Shakshuka", "minutes": 30, "vegetarian": True})
    assert created.status_code == 201
    assert client.get(f"/recipes/{created.json['id']}").json["title"] == "Shakshuka"


def test_minutes_must_be_positive(client):
    assert client.post("/recipes", json={"title": "Toast", "minutes": -1}).status_code == 422
