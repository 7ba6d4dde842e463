"""Recipes API: Flask + Flask-SQLAlchemy, SQLite file next to the code, schema managed with Flask-Migrate."""

import json
import os

from flask import Flask, jsonify, request
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from werkzeug.exceptions import HTTPException

app = Flask(__name__)
# relative sqlite paths live in the instance folder: /app/instance/recipes.db in the container
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("DATABASE_URL", "sqlite:///recipes.db")
db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Recipe(db.Model):
    __tablename__ = "recipes"
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(120), nullable=False)
    minutes = db.Column(db.Integer, nullable=False)
    vegetarian = db.Column(db.Boolean, nullable=False, default=False)

    def to_dict(self):
        return {"id": self.id, "title": self.title, "minutes": self.minutes, "vegetarian": self.vegetarian}


FIELDS = {"title": str, "minutes": int, "vegetarian": bool}


def validate(data, partial=False):
    """A list of problems with the body (empty when it is fine)."""
    if not isinstance(data, dict):
        return ["the body must be a JSON object"]
    errors = []
    for name, kind in FIELDS.items():
        if name not in data:
            if not partial and name != "vegetarian":
                errors.append(f"{name} is required")
            continue
        value = data[name]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            errors.append(f"{name} must be an integer")
        elif kind is int and not 1 <= value <= 1440:
            errors.append(f"{name} must be between 1 and 1440")
        elif kind is str and (not isinstance(value, str) or not value.strip() or len(value) > 120):
            errors.append(f"{name} must be a non-empty string of at most 120 characters")
        elif kind is bool and not isinstance(value, bool):
            errors.append(f"{name} must be true or false")
    unknown = sorted(set(data) - set(FIELDS) - {"id"})
    if unknown:
        errors.append(f"unknown fields: {', '.join(unknown)}")
    return errors


@app.errorhandler(HTTPException)
def http_error(exc):
    """JSON instead of Werkzeug's HTML page, keeping its headers (Allow on a 405)."""
    response = exc.get_response()
    response.data = json.dumps({"error": exc.name, "detail": exc.description})
    response.content_type = "application/json"
    return response


@app.errorhandler(Exception)
def server_error(exc):
    app.logger.exception("unhandled error")
    return jsonify(error="Internal Server Error"), 500


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/recipes")
def list_recipes():
    return jsonify([r.to_dict() for r in Recipe.query.order_by(Recipe.id).all()])


@app.post("/recipes")
def create_recipe():
    data = request.get_json(silent=True)
    errors = validate(data)
    if errors:
        return jsonify(error="Validation failed", detail=errors), 422
    recipe = Recipe(title=data["title"].strip(), minutes=data["minutes"], vegetarian=data.get("vegetarian", False))
    db.session.add(recipe)
    db.session.commit()
    return jsonify(recipe.to_dict()), 201


@app.get("/recipes/<int:recipe_id>")
def get_recipe(recipe_id):
    return jsonify(db.get_or_404(Recipe, recipe_id, description=f"recipe {recipe_id} not found").to_dict())


@app.put("/recipes/<int:recipe_id>")
def update_recipe(recipe_id):
    recipe = db.get_or_404(Recipe, recipe_id, description=f"recipe {recipe_id} not found")
    data = request.get_json(silent=True)
    errors = validate(data)
    if errors:
        return jsonify(error="Validation failed", detail=errors), 422
    recipe.title, recipe.minutes = data["title"].strip(), data["minutes"]
    recipe.vegetarian = data.get("vegetarian", False)
    db.session.commit()
    return jsonify(recipe.to_dict())


@app.delete("/recipes/<int:recipe_id>")
def delete_recipe(recipe_id):
    recipe = db.get_or_404(Recipe, recipe_id, description=f"recipe {recipe_id} not found")
    db.session.delete(recipe)
    db.session.commit()
    return "", 204


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=5000)
