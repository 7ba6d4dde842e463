import json
import traceback

import yaml
from flask import Flask, Response, abort, jsonify, request
from werkzeug.exceptions import HTTPException

app = Flask(__name__)

# recipes are kept in memory for now (TODO: add a database)
recipes = {}
next_id = 1


@app.errorhandler(Exception)
def handle_exception(e):
    # pass through HTTP errors
    if isinstance(e, HTTPException):
        return e
    # show the error so I can debug it
    return jsonify({"error": str(e), "trace": traceback.format_exc()}), 500


@app.route("/openapi.yaml")
def openapi_yaml():
    with open("openapi.yaml") as f:
        return Response(f.read(), mimetype="application/yaml")


@app.route("/openapi.json")
def openapi_json():
    with open("openapi.yaml") as f:
        return jsonify(yaml.safe_load(f))


@app.route("/recipes", methods=["GET"])
def list_recipes():
    return jsonify(list(recipes.values()))


@app.route("/recipes", methods=["POST"])
def create_recipe():
    global next_id
    data = json.loads(request.data)
    if not data.get("title"):
        return jsonify({"error": "title is required"}), 400

    recipe = {
        "id": next_id,
        "title": data["title"],
        "ingredients": data.get("ingredients", []),
        "servings": data.get("servings", 1),
    }
    recipes[next_id] = recipe
    next_id += 1
    return jsonify(recipe), 201


@app.route("/recipes/search")
def search_recipes():
    q = request.args.get("q", "")
    results = [r for r in recipes.values() if q.lower() in r["title"].lower()]
    return jsonify(results)


@app.route("/recipes/<int:recipe_id>", methods=["GET"])
def get_recipe(recipe_id):
    if recipe_id not in recipes:
        return jsonify({"error": "Recipe not found"}), 404
    recipe = dict(recipes[recipe_id])
    recipe["servings"] = f"{recipe['servings']} servings"  # looks nicer in the frontend
    return jsonify(recipe)


@app.route("/recipes/<int:recipe_id>", methods=["PUT"])
def update_recipe(recipe_id):
    if recipe_id not in recipes:
        abort(404)
    data = json.loads(request.data)
    recipe = recipes[recipe_id]
    recipe["title"] = data.get("title", recipe["title"])
    recipe["ingredients"] = data.get("ingredients", recipe["ingredients"])
    recipe["servings"] = data.get("servings", recipe["servings"])
    return jsonify(recipe)


@app.route("/recipes/<int:recipe_id>", methods=["DELETE"])
def delete_recipe(recipe_id):
    if recipe_id not in recipes:
        return "not found", 404
    del recipes[recipe_id]
    return "", 204


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=5000)
