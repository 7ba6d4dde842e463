const express = require("express");
const fs = require("fs");
const path = require("path");
const pool = require("./db");

const app = express();
app.use(express.json({ limit: "100kb" }));

const spec = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "openapi.json"), "utf8"));
app.get("/openapi.json", (req, res) => res.json(spec));

app
  .route("/health")
  .get((req, res) => res.json({ status: "ok" }))
  .all((req, res) => res.set("Allow", "GET").status(405).json({ error: "method not allowed" }));

const FIELDS = ["title", "author", "year"];

// PostgreSQL text cannot hold NUL characters
const goodText = (value) => typeof value === "string" && value.trim() !== "" && value.length <= 200 && !value.includes("\u0000");

function validate(body) {
  const errors = [];
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return ["the body must be a JSON object"];
  }
  if (!goodText(body.title)) {
    errors.push("title must be a non-empty string of at most 200 characters");
  }
  if (!goodText(body.author)) {
    errors.push("author must be a non-empty string of at most 200 characters");
  }
  if (body.year !== undefined && (!Number.isInteger(body.year) || body.year < 0 || body.year > 2100)) {
    errors.push("year must be an integer between 0 and 2100");
  }
  const unknown = Object.keys(body).filter((k) => !FIELDS.includes(k) && k !== "id");
  if (unknown.length) errors.push(`unknown fields: ${unknown.join(", ")}`);
  return errors;
}

function bookId(req, res) {
  const id = Number(req.params.id);
  if (!Number.isInteger(id) || id < 1 || id > 2147483647) {
    res.status(404).json({ error: `book ${req.params.id} not found` });
    return null;
  }
  return id;
}

app
  .route("/books")
  .get(async (req, res, next) => {
    try {
      const { rows } = await pool.query("SELECT id, title, author, year FROM books ORDER BY id");
      res.json(rows);
    } catch (err) {
      next(err);
    }
  })
  .post(async (req, res, next) => {
    const errors = validate(req.body);
    if (errors.length) return res.status(422).json({ error: "validation failed", details: errors });
    try {
      const { rows } = await pool.query(
        "INSERT INTO books (title, author, year) VALUES ($1, $2, $3) RETURNING id, title, author, year",
        [req.body.title.trim(), req.body.author.trim(), req.body.year ?? null]
      );
      res.status(201).json(rows[0]);
    } catch (err) {
      next(err);
    }
  })
  .all((req, res) => res.set("Allow", "GET, POST").status(405).json({ error: "method not allowed" }));

app
  .route("/books/:id")
  .get(async (req, res, next) => {
    const id = bookId(req, res);
    if (id === null) return;
    try {
      const { rows } = await pool.query("SELECT id, title, author, year FROM books WHERE id = $1", [id]);
      if (!rows.length) return res.status(404).json({ error: `book ${id} not found` });
      res.json(rows[0]);
    } catch (err) {
      next(err);
    }
  })
  .put(async (req, res, next) => {
    const id = bookId(req, res);
    if (id === null) return;
    const errors = validate(req.body);
    if (errors.length) return res.status(422).json({ error: "validation failed", details: errors });
    try {
      const { rows } = await pool.query(
        "UPDATE books SET title = $1, author = $2, year = $3 WHERE id = $4 RETURNING id, title, author, year",
        [req.body.title.trim(), req.body.author.trim(), req.body.year ?? null, id]
      );
      if (!rows.length) return res.status(404).json({ error: `book ${id} not found` });
      res.json(rows[0]);
    } catch (err) {
      next(err);
    }
  })
  .delete(async (req, res, next) => {
    const id = bookId(req, res);
    if (id === null) return;
    try {
      const { rowCount } = await pool.query("DELETE FROM books WHERE id = $1", [id]);
      if (!rowCount) return res.status(404).json({ error: `book ${id} not found` });
      res.status(204).end();
    } catch (err) {
      next(err);
    }
  })
  .all((req, res) => res.set("Allow", "GET, PUT, DELETE").status(405).json({ error: "method not allowed" }));

app.use((req, res) => res.status(404).json({ error: `no route for ${req.method} ${req.path}` }));

// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => {
  if (err.type === "entity.parse.failed") return res.status(400).json({ error: "malformed JSON body" });
  if (err.type === "entity.too.large") return res.status(413).json({ error: "body too large" });
  console.error(err);
  res.status(500).json({ error: "internal server error" });
});

module.exports = app;
